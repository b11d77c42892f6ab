#!/usr/bin/perl
# Writes a small GeoLite2-ASN-layout database for tests (made-up data):
#   perl scripts/make-asn-mmdb.pl OUT.mmdb NETWORK=ASN:ORG [NETWORK=ASN:ORG ...]
# e.g. 1.128.0.0/11=64500:Example Net
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my ($out, @nets) = @ARGV;
die "usage: $0 OUT.mmdb NETWORK=ASN:ORG...\n" unless defined $out && @nets;
my %types = (autonomous_system_number => 'uint32', autonomous_system_organization => 'utf8_string');
my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 24,
    database_type            => 'GeoLite2-ASN',
    languages                => ['en'],
    description              => { en => 'variantd test ASN database (made-up data)' },
    alias_ipv6_to_ipv4       => 1,
    remove_reserved_networks => 0,
    map_key_type_callback    => sub { $types{ $_[0] } or die "no type for key $_[0]\n" },
);
for my $n (@nets) {
    my ($net, $asn, $org) = $n =~ /^([^=]+)=(\d+):(.*)$/ or die "bad entry '$n'\n";
    $tree->insert_network($net, { autonomous_system_number => $asn + 0,
                                  autonomous_system_organization => $org });
}
open my $fh, '>:raw', $out or die "open $out: $!\n";
$tree->write_tree($fh);
close $fh or die "close $out: $!\n";
