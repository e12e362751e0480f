#!/usr/bin/perl
# Tiny TCP server (perl-base only): answers each connection with one line naming this pod,
# echoing the first line it received, then closes. Port from $ECHO_PORT (default 8080).
use strict;
use warnings;
use IO::Socket::INET;

$| = 1;
my $port = $ENV{ECHO_PORT} || 8080;
my $name = `hostname`; chomp $name;
my $srv = IO::Socket::INET->new(LocalAddr => '0.0.0.0', LocalPort => $port, Proto => 'tcp',
                                Listen => 16, ReuseAddr => 1) or die "listen on $port: $!\n";
$SIG{TERM} = sub { print "echo-server: SIGTERM, exiting\n"; exit 0 };
print "echo-server: listening on $port\n";
while (my $c = $srv->accept) {
  my $line = '';
  eval {
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 2;
    $line = <$c> // '';
    alarm 0;
  };
  $line =~ s/\r?\n\z//;
  print $c "pong from $name: $line\n";
  close $c;
  print "echo-server: answered '$line'\n";
}
