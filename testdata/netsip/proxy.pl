#!/usr/bin/perl
# A registrar and stateless proxy on Net::SIP (Debian libnet-sip-perl), a test peer of flashotp: a callee
# registers its AOR (sip:user@<this proxy's ip:port>) here, and an INVITE for that AOR is forwarded to the
# contact it registered; anything else is forwarded by its Request-URI. It accepts every registration, with
# no password: for tests on loopback only.
#
# usage: proxy.pl udp|tcp ip:port [debug level]
# It prints "netsip ready on <proto> <ip:port>" once it listens, and with a debug level (e.g. 5) the SIP
# messages it handles, to stderr. It stops on SIGTERM.
use strict;
use warnings;
use Net::SIP;
use Net::SIP::Debug;

my ($proto, $addr, $debug) = @ARGV;
die "usage: $0 udp|tcp ip:port [debug level]\n"
    unless defined $addr && $proto =~ m{^(udp|tcp)$} && $addr =~ m{^[\d.]+:\d+$};
Net::SIP::Debug->level($debug) if $debug;
$| = 1;
$SIG{TERM} = $SIG{INT} = sub { exit 0 };

my ($ip, $port) = split /:/, $addr;
my $leg = Net::SIP::Leg->new(addr => $ip, port => $port, proto => $proto);
my $ua = Net::SIP::Simple->new(leg => $leg);
$ua->create_chain([
    $ua->create_registrar,
    $ua->create_stateless_proxy,
]);
print STDERR "netsip ready on $proto $addr\n";
$ua->loop;
