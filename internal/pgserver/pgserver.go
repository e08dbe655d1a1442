// Package pgserver runs a PostgreSQL server of Debian's postgresql package for the tests and the bench: a
// cluster made by initdb in a directory of its own, listening on a free loopback port, run as the postgres
// user when the caller is root (the server refuses root), and stopped by its PID.
package pgserver

import (
	"errors"
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
	"time"

	"flashotp/internal/fakes"
)

// ErrMissing is returned when PostgreSQL is not installed (the Debian package postgresql).
var ErrMissing = errors.New("postgres not found: install the Debian package postgresql (make test does this as root)")

// Server is a running PostgreSQL server.
type Server struct {
	Port int
	Dir  string // the data directory
	root string // Dir's parent, the server's own: removed by Remove
	bin  string // the directory of initdb, postgres, createdb
	cred *syscall.Credential
	cmd  *exec.Cmd
	out  fakes.Buffer // what the server writes
	done chan struct{}
}

// Start initialises a cluster (trust authentication, loopback only, fsync and synchronous_commit on, as in
// production) and starts its server. Stop, then Remove, when done.
func Start() (*Server, error) {
	s, err := newServer()
	if err != nil {
		return nil, err
	}
	if out, err := s.command("initdb", "-D", s.Dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions").CombinedOutput(); err != nil {
		s.Remove()
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := s.start(); err != nil {
		s.Remove()
		return nil, err
	}
	return s, nil
}

// StartStandby starts a streaming standby of s (pg_basebackup from it) on a port of its own, and makes it
// s's synchronous standby: from then on a commit on s returns once the standby has it too.
func (s *Server) StartStandby() (*Server, error) {
	sb, err := newServer()
	if err != nil {
		return nil, err
	}
	if out, err := sb.command("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "postgres",
		"-D", sb.Dir, "-R", "-X", "stream", "--checkpoint=fast").CombinedOutput(); err != nil {
		sb.Remove()
		return nil, fmt.Errorf("pg_basebackup: %w\n%s", err, out)
	}
	if err := sb.start(); err != nil {
		sb.Remove()
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		n, err := s.SQL("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
		if err == nil && n == "1" {
			break
		}
		if time.Now().After(deadline) {
			sb.Stop()
			sb.Remove()
			return nil, fmt.Errorf("the standby is not streaming in 30s (%v):\n%s", err, sb.Log())
		}
	}
	for _, sql := range []string{"ALTER SYSTEM SET synchronous_standby_names = '*'", "SELECT pg_reload_conf()"} {
		if _, err := s.SQL(sql); err != nil {
			return sb, err
		}
	}
	return sb, nil
}

// Promote makes a standby the primary (pg_ctl promote) and waits until it takes writes.
func (s *Server) Promote() error {
	if out, err := s.command("pg_ctl", "promote", "-w", "-D", s.Dir).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl promote: %w\n%s", err, out)
	}
	return nil
}

// SQL runs one statement with psql on database postgres and returns its output, unaligned.
func (s *Server) SQL(sql string) (string, error) {
	out, err := s.command("psql", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "postgres", "-d", "postgres", "-Atc", sql).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql %q: %w\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// CreateDB creates the database name and returns its DSN (pgx's URL form).
func (s *Server) CreateDB(name string) (string, error) {
	if out, err := s.command("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "postgres", name).CombinedOutput(); err != nil {
		return "", fmt.Errorf("createdb %s: %w\n%s", name, err, out)
	}
	return s.DSN(name), nil
}

// DSN is the connection string of database name on this server.
func (s *Server) DSN(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, name)
}

// Log returns what the server wrote.
func (s *Server) Log() string { return s.out.String() }

// Stop stops the server (fast shutdown: SIGINT), or kills it after 10 s; it does nothing once stopped.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.Kill()
	}
}

// Kill kills the server's process group with SIGKILL, as a crash would.
func (s *Server) Kill() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// Remove deletes the server's directory; stop it first.
func (s *Server) Remove() { os.RemoveAll(s.root) }

// newServer makes the directory of a server (its data directory inside, not made yet), owned by the
// postgres user when the caller is root.
func newServer() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, done: make(chan struct{})}
	if s.root, err = os.MkdirTemp("", "flashotp-pg-"); err != nil {
		return nil, err
	}
	s.Dir = filepath.Join(s.root, "data")
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			s.Remove()
			return nil, fmt.Errorf("%w (user postgres not found)", ErrMissing)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := errors.Join(os.Chmod(s.root, 0o755), os.Chown(s.root, uid, gid)); err != nil {
			s.Remove()
			return nil, err
		}
	}
	return s, nil
}

// start starts the server of s.Dir on a free port and waits until it accepts connections.
func (s *Server) start() error {
	var err error
	if s.Port, err = freePort(); err != nil {
		return err
	}
	s.cmd = s.command("postgres", "-D", s.Dir, "-p", strconv.Itoa(s.Port), "-k", s.root,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=on", "-c", "synchronous_commit=on",
		"-c", "max_connections=300", "-c", "shared_buffers=64MB")
	s.cmd.SysProcAttr.Setpgid = true
	s.cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL // not left behind if the caller dies
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := s.command("pg_isready", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "postgres").CombinedOutput()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited:\n%s", s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("postgres not ready in 30s (%s):\n%s", out, s.out.String())
		}
	}
}

// command runs one of the server's programs as the server's user.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	cmd.Dir = "/"
	return cmd
}

// findBin returns the newest installed server's program directory (/usr/lib/postgresql/N/bin).
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(dirs) == 0 {
		return "", ErrMissing
	}
	version := func(p string) int { v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p)))); return v }
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	return filepath.Dir(dirs[len(dirs)-1]), nil
}

// freePort returns a loopback TCP port free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
