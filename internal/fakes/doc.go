// Package fakes holds the small, hand-written test doubles that the tests of several packages share, so
// that each exists once: Dialer (an otp.Dialer that records calls), Buffer (a writer goroutines share with
// the test reading it). Each states what it stands in for with a compile-time guard
// (var _ otp.Dialer = (*Dialer)(nil)): a fake that no longer fits its interface does not build. No mocking
// framework: a fake records what it was given and answers what the test told it to.
//
// fakes imports the packages whose interfaces it fakes (otp, dialer), so those packages' own in-package
// tests cannot use it; their external tests (package otp_test) can.
package fakes
