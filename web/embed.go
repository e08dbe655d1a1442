// Package web holds the console's browser app: its sources (Vue 3, TypeScript, Vite) beside this file and the
// built files in dist, which `make ui` rebuilds and which are committed, so building the engine needs no Node.
package web

import "embed"

// Dist is the built console (dist/index.html and dist/assets/...), served by the engine at /console/. Paths
// inside it start with "dist/": take fs.Sub(Dist, "dist") to serve it from its root.
//
//go:embed all:dist
var Dist embed.FS
