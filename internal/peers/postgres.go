package peers

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Postgres is a PostgreSQL server (Debian's postgresql) started for a test: a cluster made by initdb in a
// directory of its own, listening on a free loopback port, run as the postgres user when the test runs as
// root (the server refuses root), and stopped by its PID when the test ends.
type Postgres struct {
	Port int
	Dir  string // the data directory
	bin  string // the directory of initdb, postgres, createdb
	// sockets is the directory of its Unix socket (and of Dir).
	sockets string
	cred    *syscall.Credential
	cmd     *exec.Cmd
	out     lockedBuffer
	done    chan struct{}
}

// StartPostgres initialises a cluster (trust authentication, loopback only, fsync and synchronous_commit
// on, as in production) and starts its server. Without PostgreSQL the test is skipped, or fails under
// CI=true.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	p := newPostgres(t)
	if out, err := p.command("initdb", "-D", p.Dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.start(t)
	return p
}

// StartStandby starts a streaming standby of p (pg_basebackup from it) on a port of its own, and makes it
// p's synchronous standby: from then on a commit on p returns once the standby has it too.
func (p *Postgres) StartStandby(t testing.TB) *Postgres {
	t.Helper()
	s := newPostgres(t)
	if out, err := s.command("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "postgres",
		"-D", s.Dir, "-R", "-X", "stream", "--checkpoint=fast").CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	s.start(t)
	deadline := time.Now().Add(30 * time.Second)
	for p.SQL(t, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("the standby is not streaming in 30s:\n%s", s.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.SQL(t, "ALTER SYSTEM SET synchronous_standby_names = '*'")
	p.SQL(t, "SELECT pg_reload_conf()")
	return s
}

// Promote makes a standby the primary (pg_ctl promote) and waits until it takes writes.
func (p *Postgres) Promote(t testing.TB) {
	t.Helper()
	if out, err := p.command("pg_ctl", "promote", "-w", "-D", p.Dir).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl promote: %v\n%s", err, out)
	}
}

// SQL runs one statement with psql on database postgres and returns its output, unaligned.
func (p *Postgres) SQL(t testing.TB, sql string) string {
	t.Helper()
	out, err := p.command("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "postgres", "-d", "postgres", "-Atc", sql).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// newPostgres makes the directory of a server (its data directory inside, not made yet), owned by the
// postgres user when the test runs as root.
func newPostgres(t testing.TB) *Postgres {
	t.Helper()
	p := &Postgres{bin: postgresBin(t), done: make(chan struct{})}
	root, err := os.MkdirTemp("", "flashotp-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	p.Dir = filepath.Join(root, "data")
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			Missing(t, "user postgres not found: install the Debian package postgresql (it creates the user)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chmod(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(root, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	p.sockets = root
	return p
}

// start starts the server of p.Dir on a free port and waits until it accepts connections.
func (p *Postgres) start(t testing.TB) {
	t.Helper()
	p.Port = freeTCPPort(t)
	p.cmd = p.command("postgres", "-D", p.Dir, "-p", strconv.Itoa(p.Port), "-k", p.sockets,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=on", "-c", "synchronous_commit=on",
		"-c", "max_connections=300", "-c", "shared_buffers=64MB")
	p.cmd.SysProcAttr.Setpgid = true
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := p.command("pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "postgres").CombinedOutput()
		if err == nil {
			break
		}
		select {
		case <-p.done:
			t.Fatalf("postgres exited:\n%s", p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres not ready in 30s (%s):\n%s", out, p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// command runs one of the server's programs as the server's user.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	cmd.Dir = "/"
	return cmd
}

// CreateDB creates the database name and returns its DSN (pgx's URL form).
func (p *Postgres) CreateDB(t testing.TB, name string) string {
	t.Helper()
	if out, err := p.command("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "postgres", name).CombinedOutput(); err != nil {
		t.Fatalf("createdb %s: %v\n%s", name, err, out)
	}
	return p.DSN(name)
}

// DSN is the connection string of database name on this server.
func (p *Postgres) DSN(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, name)
}

// Log returns what the server wrote.
func (p *Postgres) Log() string { return p.out.String() }

// Stop stops the server (fast shutdown: SIGINT), or kills it after 10 s; it does nothing once stopped.
func (p *Postgres) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		stopGroup(p.cmd, p.done)
	}
}

// Kill kills the server's postmaster with SIGKILL, as a crash would (its backends end when they see it gone).
func (p *Postgres) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// postgresBin returns the newest installed server's program directory (/usr/lib/postgresql/N/bin).
func postgresBin(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(dirs) == 0 {
		Missing(t, "postgres not found: install the Debian package postgresql (make test does this as root)")
	}
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(dirs[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(dirs[j]))))
		return vi < vj
	})
	return filepath.Dir(dirs[len(dirs)-1])
}

// freeTCPPort returns a loopback TCP port free a moment ago.
func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
