package store

// The schema: every bucket of the database file, with what it holds under which key. The packages that own
// the records encode them (JSON); nothing outside this package knows these names.
const (
	// apps
	bucketApps = "apps" // app ID → app with its sealed webhook secret
	bucketKeys = "keys" // API key → key with its secret's MAC and sealed secret

	// numberpool
	bucketPools      = "pools"      // pool name → pool
	bucketQuarantine = "quarantine" // "cli:" + the CLI's MAC, or "entry:" + pool/entry ID → quarantine
	bucketRecent     = "recent"     // recipient (E.164) → its recent calls, as MACs
)
