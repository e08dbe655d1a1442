package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"flashotp/internal/peers"
)

// The image of the repository's Dockerfile, built by podman, serves the demo: a send through the published
// port ends with the built-in phone's missed call, the HEALTHCHECK passes, the engine runs as the non-root
// user on a read-only root filesystem, and `podman stop` ends it cleanly.
//
// No image registry is reachable from the test machines, so the Dockerfile's build stage runs on a local
// image made here from this machine's Go toolchain and a static busybox (its shell), with the module and
// build caches mounted (GOPROXY=off: nothing is downloaded). podman runs with runc, as crun refuses the hybrid
// cgroup layout of these machines.
func TestContainerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: building and running the image takes half a minute; make test runs it")
	}
	podman := peers.Require(t, "podman", "podman")
	peers.Require(t, "runc", "runc")
	busybox := peers.Require(t, "busybox", "busybox-static")
	if f, err := elf.Open(busybox); err != nil {
		t.Fatal(err)
	} else {
		static := true
		for _, p := range f.Progs {
			static = static && p.Type != elf.PT_INTERP
		}
		f.Close()
		if !static {
			peers.Missing(t, busybox+" is not statically linked: install the Debian package busybox-static")
		}
	}
	pod := func(args ...string) (string, error) {
		cmd := exec.Command(podman, append([]string{"--runtime", "runc"}, args...)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if err != nil {
			err = fmt.Errorf("podman %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
		}
		return strings.TrimSpace(out.String()), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := pod(args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	goEnv := func(key string) string {
		out, err := exec.Command("go", "env", key).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", key, err)
		}
		return strings.TrimSpace(string(out))
	}
	goroot, goVersion := goEnv("GOROOT"), goEnv("GOVERSION")
	modCache, buildCache := goEnv("GOMODCACHE"), goEnv("GOCACHE")
	builder := "localhost/flashotp-test-go:" + strings.TrimPrefix(goVersion, "go")
	if _, err := pod("image", "exists", builder); err != nil {
		importBuilder(t, podman, builder, goroot, busybox)
	}

	// Make sure the module cache holds every module (go mod download is quick when it does).
	if out, err := exec.Command("go", "mod", "download").CombinedOutput(); err != nil {
		t.Fatalf("go mod download: %v\n%s", err, out)
	}
	image := fmt.Sprintf("localhost/flashotp-test:%d", os.Getpid())
	start := time.Now()
	// --format docker: the OCI format has no HEALTHCHECK.
	must("build", "--format", "docker", "--quiet", "--layers=false", "-t", image,
		"--build-arg", "GO_IMAGE="+builder, "--build-arg", "VERSION=container-test",
		"-v", modCache+":/go/pkg/mod:ro", "-v", buildCache+":/root/.cache/go-build", repoRoot)
	t.Logf("image built in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() { _, _ = pod("rmi", "-f", image) })

	// podman's default limits cannot be set without CAP_SYS_RESOURCE: pass this process's open-file limit, and a
	// process limit well below the sandbox's (which refuses even the current one) and far above the engine's
	// few dozen threads.
	const nproc = "nproc=4096:4096"
	if v := must("run", "--rm", "--ulimit", ulimit(t, "nofile", syscall.RLIMIT_NOFILE), "--ulimit", nproc, image, "version"); v != "flashotp container-test" {
		t.Errorf("version in the image: %q", v)
	}
	id := must("run", "-d", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--ulimit", ulimit(t, "nofile", syscall.RLIMIT_NOFILE), "--ulimit", nproc,
		"-p", "127.0.0.1::8080", image)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("container log:\n%s", containerLogs(t, podman, id))
		}
		_, _ = pod("rm", "-f", "-v", id)
	})
	if user := must("inspect", "--format", "{{.Config.User}}", id); user != "65532:65532" {
		t.Errorf("runs as %q, want the non-root 65532:65532", user)
	}
	port := must("port", id, "8080/tcp") // 127.0.0.1:PORT
	c := client{t, "http://" + strings.TrimSpace(strings.Split(port, "\n")[0])}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if a, err := c.tryDo("GET", "/healthz", ""); err == nil && a.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container's /healthz did not answer within 30s on %s", c.base)
		}
		time.Sleep(100 * time.Millisecond)
	}

	a := c.send(recipient)
	if a.status != 202 {
		t.Fatalf("send through the container: %d %s", a.status, a.raw)
	}
	id2 := a.body["verification_id"].(string)
	if v := c.waitCall(id2); v["call"].(map[string]any)["state"] != "missed" {
		t.Errorf("call through the container: %v", v["call"])
	}
	logs := containerLogs(t, podman, id)
	if !regexp.MustCompile(`missed call from \+44207946\d{4} to \` + recipient).MatchString(logs) {
		t.Errorf("the built-in phone printed no missed call:\n%s", logs)
	}
	if _, err := pod("healthcheck", "run", id); err != nil {
		t.Errorf("HEALTHCHECK: %v", err)
	}
	// Stop: SIGTERM, the engine drains and exits 0 well before podman would SIGKILL it.
	start = time.Now()
	must("stop", "-t", "30", id)
	if code := must("inspect", "--format", "{{.State.ExitCode}}", id); code != "0" {
		t.Errorf("exit code after stop: %s", code)
	}
	t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond))
}

// containerLogs is what the container printed, stdout and stderr.
func containerLogs(t *testing.T, podman, id string) string {
	out, err := exec.Command(podman, "--runtime", "runc", "logs", id).CombinedOutput()
	if err != nil {
		t.Errorf("podman logs: %v", err)
	}
	return string(out)
}

// ulimit is podman's --ulimit value for this process's own limit of resource.
func ulimit(t *testing.T, name string, resource int) string {
	t.Helper()
	var l syscall.Rlimit
	if err := syscall.Getrlimit(resource, &l); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s=%d:%d", name, l.Cur, l.Max)
}

// importBuilder makes a build-stage image: GOROOT at /usr/local/go, busybox as /bin/sh and the few commands
// the Dockerfile's RUN lines call, the CA bundle, and the environment of the golang images.
func importBuilder(t *testing.T, podman, name, goroot, busybox string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(podman, "import",
		"--change", "ENV PATH=/usr/local/go/bin:/go/bin:/bin",
		"--change", "ENV GOPATH=/go",
		"--change", "ENV HOME=/root",
		"--change", "ENV GOPROXY=off",
		"--change", "ENV GOTOOLCHAIN=local",
		"-", name)
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	werr := writeBuilderTar(w, goroot, busybox)
	w.Close()
	if err := cmd.Wait(); err != nil || werr != nil {
		t.Fatalf("podman import of the build image: %v %v\n%s", werr, err, out.String())
	}
	t.Logf("build image %s made in %s", name, time.Since(start).Round(time.Millisecond))
}

func writeBuilderTar(w io.Writer, goroot, busybox string) error {
	tw := tar.NewWriter(w)
	dir := func(name string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode})
	}
	file := func(name, src string, mode int64) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: st.Size()}); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	}
	for _, d := range []string{"bin", "etc", "etc/ssl", "etc/ssl/certs", "root", "go", "usr", "usr/local"} {
		if err := dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := dir("tmp", 0o1777); err != nil {
		return err
	}
	if err := file("bin/busybox", busybox, 0o755); err != nil {
		return err
	}
	for _, applet := range []string{"sh", "mkdir", "chmod", "printf", "cp", "cat", "ls"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777}); err != nil {
			return err
		}
	}
	if err := file("etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt", 0o644); err != nil {
		return err
	}
	err := filepath.WalkDir(goroot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(goroot, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(filepath.Join("usr/local/go", rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return dir(name, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777})
		default:
			return file(name, p, int64(info.Mode().Perm()))
		}
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
