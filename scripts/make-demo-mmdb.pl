#!/usr/bin/perl
# Builds the demo GeoIP2-City-layout database from data/geo/demo-city.tsv so
# the quick start and the tests need no download. The assignments are made up.
# Usage: perl scripts/make-demo-mmdb.pl IN.tsv OUT.mmdb
#
# Columns (TAB-separated, '#' lines are comments, empty field = absent):
#   network country country_name continent city time_zone latitude longitude
#   region region_name postal eu
# eu: 1 writes country.is_in_european_union = true; anything else omits it
# (that is how MaxMind's own databases say "not in the EU").
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my ($in, $out) = @ARGV;
die "usage: $0 IN.tsv OUT.mmdb\n" unless defined $in && defined $out;

my %types = (
    city => 'map', continent => 'map', country => 'map', registered_country => 'map',
    location => 'map', postal => 'map', subdivisions => ['array', 'map'], names => 'map',
    code => 'utf8_string', iso_code => 'utf8_string', en => 'utf8_string',
    time_zone => 'utf8_string', latitude => 'double', longitude => 'double',
    accuracy_radius => 'uint16', is_in_european_union => 'boolean',
);
my %continent_name = (
    AF => 'Africa', AN => 'Antarctica', AS => 'Asia', EU => 'Europe',
    NA => 'North America', OC => 'Oceania', SA => 'South America',
);

my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 28,
    database_type            => 'GeoIP2-City',
    languages                => ['en'],
    description              => { en => 'variantd demo GeoIP2-City database (made-up data)' },
    alias_ipv6_to_ipv4       => 1,
    remove_reserved_networks => 0,
    map_key_type_callback    => sub { $types{ $_[0] } or die "no type for key $_[0]\n" },
);

open my $fh, '<:encoding(UTF-8)', $in or die "open $in: $!\n";
my $count = 0;
while (my $line = <$fh>) {
    chomp $line;
    next if $line =~ /^\s*(#|$)/;
    my @f = split /\t/, $line, -1;
    die "$in:$.: expected 12 columns, got " . scalar(@f) . "\n" unless @f == 12;
    my ($net, $iso, $cname, $cont, $city, $tz, $lat, $lon, $reg, $regname, $postal, $eu) = @f;
    die "$in:$.: no network\n" unless length $net;
    my %rec;
    if (length $iso) {
        my %c = (iso_code => $iso);
        $c{names} = { en => $cname } if length $cname;
        $c{is_in_european_union} = 1 if $eu eq '1';
        $rec{country} = \%c;
        $rec{registered_country} = { %c };
    }
    if (length $cont) {
        $rec{continent} = { code => $cont };
        $rec{continent}{names} = { en => $continent_name{$cont} } if $continent_name{$cont};
    }
    $rec{city} = { names => { en => $city } } if length $city;
    my %loc;
    $loc{latitude} = $lat + 0 if length $lat;
    $loc{longitude} = $lon + 0 if length $lon;
    $loc{time_zone} = $tz if length $tz;
    $loc{accuracy_radius} = 20 if length $lat && length $lon;
    $rec{location} = \%loc if %loc;
    $rec{postal} = { code => $postal } if length $postal;
    if (length $reg) {
        my %s = (iso_code => $reg);
        $s{names} = { en => $regname } if length $regname;
        $rec{subdivisions} = [ \%s ];
    }
    $tree->insert_network($net, \%rec);
    $count++;
}
close $fh;

open my $ofh, '>:raw', $out or die "open $out: $!\n";
$tree->write_tree($ofh);
close $ofh or die "close $out: $!\n";
print "wrote $out ($count networks)\n";
