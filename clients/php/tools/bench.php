<?php
/*
 * Round-trip time of Client::decide on one persistent connection, as a page
 * would see it: php tools/bench.php [ADDRESS] [CALLS]. Prints p50/p99/max in
 * microseconds and the client's counters. Against `make run`: 127.0.0.1:7700.
 */
declare(strict_types=1);
require __DIR__ . '/../autoload.php';

$address = $argv[1] ?? '127.0.0.1:7700';
$n = max(1, (int) ($argv[2] ?? 2000));
$c = new Variantd\Client(['address' => $address, 'budget_ms' => 1000]);
$ctx = ['ip' => '1.0.0.7', 'ua' => 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15',
        'referer' => 'https://www.google.com/', 'url' => 'https://shop.example/', 'vid' => 'bench-visitor',
        'attrs' => []];
$c->decide(['home.hero', 'home.banner'], $ctx);   // connect once
$us = [];
for ($i = 0; $i < $n; $i++) {
    $t = hrtime(true);
    $d = $c->decide(['home.hero', 'home.banner'], $ctx);
    $us[] = (hrtime(true) - $t) / 1000;
    if (!$d->ok()) {
        fwrite(STDERR, "failed: {$d->error}\n");
        exit(1);
    }
}
sort($us);
$q = static fn(float $p): float => $us[min(count($us) - 1, (int) floor($p * count($us)))];
printf("%d decides (2 slots) on one connection: p50 %.0f us, p99 %.0f us, max %.0f us\n",
       $n, $q(0.50), $q(0.99), end($us));
echo json_encode($c->stats()), "\n";
