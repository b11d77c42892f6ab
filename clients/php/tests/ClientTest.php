<?php
/*
 * The PHP client against the real daemon (build/variantd or build-asan/),
 * started per test on a free loopback port with the definitions below. The
 * demo GeoIP database puts 1.0.0.0/24 in Berlin and 2.0.0.0/24 in New York.
 */
declare(strict_types=1);

namespace Variantd\Tests;

use PHPUnit\Framework\TestCase;
use Variantd\Client;
use Variantd\Encoder;

final class ClientTest extends TestCase
{
    private const NOTIFICATIONS = 'variantd_rpc_calls_total{method="notification"}';

    private string $defs;
    private DaemonProcess $daemon;
    /** @var list<DaemonProcess> */
    private array $started = [];
    /** @var list<Client> */
    private array $clients = [];

    protected function setUp(): void
    {
        $this->defs = DaemonProcess::writeDefinitions(
            [
                ['id' => 'berlin', 'match' => ['attr' => 'geo.city', 'op' => 'eq', 'value' => 'Berlin']],
                ['id' => 'gold', 'match' => ['attr' => 'attr.tier', 'op' => 'eq', 'value' => 'gold']],
            ],
            [
                ['slot' => 'home.hero',
                 'rules' => [['segment' => 'berlin', 'variant' => 'hero-berlin']],
                 'default' => 'hero-generic',
                 'variants' => ['hero-berlin' => ['headline' => 'Hallo Berlin'],
                                'hero-generic' => ['headline' => 'Hello']]],
                ['slot' => 'home.banner',
                 'rules' => [['segment' => 'gold', 'variant' => 'banner-gold']],
                 'default' => 'banner-plain',
                 'variants' => ['banner-gold' => ['text' => 'Gold'], 'banner-plain' => ['text' => 'Plain']]],
            ]
        );
        $this->daemon = $this->startDaemon(DaemonProcess::freePort());
    }

    protected function tearDown(): void
    {
        // Closed first: the daemon lingers up to 2 s on a connection whose
        // client keeps it open at SIGTERM.
        foreach ($this->clients as $c) {
            $c->close();
        }
        foreach ($this->started as $d) {
            $rc = $d->stop();
            $this->assertSame(0, $rc, "variantd exited with $rc:\n" . substr($d->logText(), -4000));
        }
        exec('rm -rf ' . escapeshellarg($this->defs));
    }

    private function startDaemon(int $port, array $args = []): DaemonProcess
    {
        $d = new DaemonProcess($port, $this->defs, $args);
        $this->started[] = $d;
        return $d->start();
    }

    /** A client of this test's daemon. Tests of other things than the budget
     *  get a generous one: the ASan daemon on a busy 2-core machine is slow. */
    private function client(array $options = []): Client
    {
        return $this->clients[] = new Client($options + ['address' => "127.0.0.1:{$this->daemon->port}",
                                                         'budget_ms' => 3000]);
    }

    public function testBerlinVisitorGetsTheBerlinVariant(): void
    {
        $d = $this->client()->decide(['home.hero', 'no.such.slot'], ['ip' => '1.0.0.7'],
                                     ['home.hero' => 'hero-generic', 'no.such.slot' => 'fallback-x']);
        $this->assertTrue($d->ok(), (string) $d->error);
        $this->assertSame('hero-berlin', $d->variant('home.hero'));
        $this->assertSame(['headline' => 'Hallo Berlin'], $d->payload('home.hero'));
        $this->assertSame('berlin', $d->segment('home.hero'));
        $this->assertFalse($d->isFallback('home.hero'));
        // An unknown slot fails alone and gets its default.
        $this->assertSame('fallback-x', $d->variant('no.such.slot'));
        $this->assertTrue($d->isFallback('no.such.slot'));
        $this->assertMatchesRegularExpression('/^f-/', (string) $d->version());

        $ny = $this->client()->decide(['home.hero'], ['ip' => '2.0.0.1']);
        $this->assertSame('hero-generic', $ny->variant('home.hero'));
        $this->assertNull($ny->segment('home.hero'));
    }

    public function testPhpArraysAreEncodedAsTheContractExpects(): void
    {
        // attrs => [] must be a map, a gappy slot list an array; php-msgpack
        // alone gets both wrong (the daemon refuses a list for attrs).
        $bytes = Encoder::params(['slots' => [0 => 'a', 2 => 'b'], 'attrs' => []]);
        $this->assertSame("\x82\xa5slots\x92\xa1a\xa1b\xa5attrs\x80", $bytes);
        $this->assertSame("\x90", msgpack_pack([]), 'php-msgpack packs [] as an array');

        $c = $this->client();
        $d = $c->decide([0 => 'home.hero', 2 => 'home.banner'], ['ip' => '1.0.0.7', 'attrs' => []]);
        $this->assertTrue($d->ok(), (string) $d->error);
        $this->assertSame('hero-berlin', $d->variant('home.hero'));
        $this->assertSame('banner-plain', $d->variant('home.banner'));

        $gold = $c->decide(['home.banner'], ['attrs' => ['tier' => 'gold']]);
        $this->assertSame('banner-gold', $gold->variant('home.banner'));
    }

    public function testExplainShowsContextAndTrace(): void
    {
        $e = $this->client()->explain(['home.hero'], ['ip' => '1.0.0.7']);
        $this->assertIsArray($e);
        $this->assertSame('Berlin', $e['context']['geo.city']);
        $this->assertTrue($e['trace']['home.hero'][0]['chosen']);
    }

    public function testAnErrorFromTheDaemonGivesDefaultsNotAnException(): void
    {
        $c = $this->client();
        $d = $c->decide(['home.hero'], ['ts' => 'yesterday'], ['home.hero' => 'hero-generic']);
        $this->assertFalse($d->ok());
        $this->assertStringContainsString('invalid_params', (string) $d->error);
        $this->assertSame('hero-generic', $d->variant('home.hero'));
        // The connection stays usable.
        $this->assertSame('hero-berlin', $c->decide(['home.hero'], ['ip' => '1.0.0.7'])->variant('home.hero'));
        $this->assertSame(1, $c->stats()['connects']);
    }

    public function testDaemonStoppedGivesDefaultsWithinTheBudget(): void
    {
        $c = $this->client(['budget_ms' => 50]);
        // A kept connection first (a busy machine may miss 50 ms once or twice).
        for ($i = 0; $i < 5 && !$c->decide(['home.hero'], ['ip' => '1.0.0.7'])->ok(); $i++) {
            usleep(100000);
        }
        $this->assertNull($c->lastError());
        $this->assertSame(0, $this->daemon->stop());

        $t = hrtime(true);
        $d = $c->decide(['home.hero', 'home.banner'], ['ip' => '1.0.0.7'],
                        ['home.hero' => ['variant' => 'hero-generic', 'payload' => ['headline' => 'Hello']]]);
        $ms = (hrtime(true) - $t) / 1e6;
        $this->assertFalse($d->ok());
        $this->assertSame('hero-generic', $d->variant('home.hero'));
        $this->assertSame(['headline' => 'Hello'], $d->payload('home.hero'));
        $this->assertNull($d->variant('home.banner'), 'no default given: null');
        $this->assertLessThan(50 + 100, $ms, 'a stopped daemon costs at most the budget (+ scheduling slack)');
        $this->assertNull($c->explain(['home.hero']));
        $this->assertNull($c->ping());
        $this->assertFalse($c->track('purchase', ['vid' => 'v1']));
        $this->assertNotNull($c->lastError());
    }

    public function testPersistentConnectionRecoversAfterARestartWithOneRetry(): void
    {
        $c = $this->client();
        $this->assertSame('hero-berlin', $c->decide(['home.hero'], ['ip' => '1.0.0.7'])->variant('home.hero'));
        $this->assertSame(1, $c->stats()['connects']);

        $this->assertSame(0, $this->daemon->stop());
        $this->daemon = $this->startDaemon($this->daemon->port);

        $d = $c->decide(['home.hero'], ['ip' => '1.0.0.7']);
        $this->assertTrue($d->ok(), (string) $d->error);
        $this->assertSame('hero-berlin', $d->variant('home.hero'));
        $this->assertSame(['calls' => 2, 'failures' => 0, 'retries' => 1, 'connects' => 2, 'notifications' => 0],
                          $c->stats());
        // and the new connection is the one kept
        $c->decide(['home.hero']);
        $this->assertSame(2, $c->stats()['connects']);
    }

    public function testAConnectionClosedByIdleTimeoutIsRetriedOnce(): void
    {
        $this->assertSame(0, $this->daemon->stop());   // no client yet: no linger
        $this->daemon = $this->startDaemon($this->daemon->port, ['--idle-timeout', '1']);
        $c = $this->client();
        $this->assertTrue($c->decide(['home.hero'])->ok());
        // The daemon closes a connection silent for idle-timeout (checked every second).
        usleep(2600000);
        $d = $c->decide(['home.hero'], ['ip' => '1.0.0.7']);
        $this->assertTrue($d->ok(), (string) $d->error);
        $this->assertSame('hero-berlin', $d->variant('home.hero'));
        $this->assertSame(1, $c->stats()['retries']);
        $this->assertSame(2, $c->stats()['connects']);
    }

    public function testBudgetHoldsAgainstAPeerThatNeverAnswers(): void
    {
        // A listening socket that is never accepted from: connect succeeds (the
        // kernel's backlog), the request is sent, no reply ever comes.
        $silent = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        $this->assertNotFalse($silent, $errstr);
        $addr = stream_socket_get_name($silent, false);
        $c = new Client(['address' => $addr, 'budget_ms' => 80]);

        $t = hrtime(true);
        $d = $c->decide(['home.hero'], ['ip' => '1.0.0.7'], ['home.hero' => 'hero-generic']);
        $ms = (hrtime(true) - $t) / 1e6;
        fclose($silent);

        $this->assertFalse($d->ok());
        $this->assertStringContainsString('80 ms budget', (string) $d->error);
        $this->assertSame('hero-generic', $d->variant('home.hero'));
        $this->assertGreaterThanOrEqual(80, $ms);
        $this->assertLessThan(80 + 150, $ms, 'the budget bounds the whole call');
        $this->assertSame(0, $c->stats()['retries'], 'a timeout is not retried');
    }

    public function testGarbageFromThePeerGivesDefaults(): void
    {
        // Something that is not variantd on the port (here: an HTTP server's
        // error line) answers: the call fails cleanly, with the defaults.
        $port = DaemonProcess::freePort();
        $script = '$s = stream_socket_server("tcp://127.0.0.1:' . $port . '"); fwrite(STDOUT, "up\n");'
                . '$c = stream_socket_accept($s, 10); fread($c, 100);'
                . 'fwrite($c, "HTTP/1.1 400 Bad Request\r\n\r\n"); sleep(5);';
        $peer = proc_open([PHP_BINARY, '-r', $script], [1 => ['pipe', 'w']], $pipes);
        $this->assertSame("up\n", fgets($pipes[1]));
        try {
            $c = new Client(['address' => "127.0.0.1:$port", 'budget_ms' => 2000]);
            $d = $c->decide(['home.hero'], [], ['home.hero' => 'hero-generic']);
            $this->assertFalse($d->ok());
            $this->assertStringContainsString('not a MessagePack-RPC response', (string) $d->error);
            $this->assertSame('hero-generic', $d->variant('home.hero'));
            $this->assertLessThan(1000, $d->elapsedMs, 'a bad answer fails at once, not at the budget');
        } finally {
            proc_terminate($peer, 9);
            proc_close($peer);
        }
    }

    public function testTrackIsANotificationThatReachesTheDaemon(): void
    {
        $c = $this->client();
        $before = $this->daemon->metric(self::NOTIFICATIONS);
        $this->assertTrue($c->track('purchase', ['vid' => 'v-123', 'value' => 49.5, 'category' => 'bikes']));
        // A notification has no reply: a decide behind it on the same
        // connection is answered after the daemon read it.
        $this->assertTrue(($d = $c->decide(['home.hero']))->ok(), (string) $d->error);
        $this->assertSame($before + 1, $this->daemon->metric(self::NOTIFICATIONS));

        // After a restart the dropped connection is noticed before the write,
        // so the notification is not lost in a dead socket.
        $this->assertSame(0, $this->daemon->stop());
        $this->daemon = $this->startDaemon($this->daemon->port);
        $this->assertTrue($c->track('purchase', ['vid' => 'v-123']));
        $this->assertTrue(($d = $c->decide(['home.hero']))->ok(), (string) $d->error);
        $this->assertSame(1.0, $this->daemon->metric(self::NOTIFICATIONS));
        $this->assertSame(1, $c->stats()['retries']);
    }
}
