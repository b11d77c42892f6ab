<?php
/*
 * The real variantd for the PHP tests: started on a free loopback port with
 * definitions written by the test, stopped by its pid (SIGTERM) and required
 * to exit 0, so an ASan/LSan report in the sanitizer build fails the test.
 * VARIANTD_BUILD names the build folder (build or build-asan).
 */
declare(strict_types=1);

namespace Variantd\Tests;

final class DaemonProcess
{
    /** @var array<int, true> */
    private static array $portsGiven = [];

    public readonly string $root;
    public readonly int $statsPort;
    /** @var resource|null */
    private $proc = null;
    private string $log;

    /** @param list<string> $args extra flags, e.g. ['--idle-timeout', '1'] */
    public function __construct(public readonly int $port, private string $defs, private array $args = [])
    {
        $this->root = dirname(__DIR__, 3);
        $this->statsPort = self::freePort();
        $this->log = $defs . "/variantd-{$port}.log";
    }

    /** A loopback port nothing listens on, never one handed out before in this run. */
    public static function freePort(): int
    {
        while (true) {
            $s = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
            if ($s === false) {
                throw new \RuntimeException("bind: $errstr");
            }
            $port = (int) substr(strrchr(stream_socket_get_name($s, false), ':'), 1);
            fclose($s);
            if (!isset(self::$portsGiven[$port])) {
                self::$portsGiven[$port] = true;
                return $port;
            }
        }
    }

    /** Writes segments/ and content-map/ for a test into a new temp folder; returns it. */
    public static function writeDefinitions(array $segments, array $contentMap): string
    {
        $dir = sys_get_temp_dir() . '/variantd-php-' . getmypid() . '-' . bin2hex(random_bytes(4));
        mkdir("$dir/segments", 0777, true);
        mkdir("$dir/content-map", 0777, true);
        file_put_contents("$dir/segments/all.json", json_encode($segments, JSON_PRETTY_PRINT));
        file_put_contents("$dir/content-map/all.json", json_encode($contentMap, JSON_PRETTY_PRINT));
        return $dir;
    }

    public static function build(): string
    {
        $build = getenv('VARIANTD_BUILD') ?: 'build';
        $root = dirname(__DIR__, 3);
        return str_starts_with($build, '/') ? $build : "$root/$build";
    }

    public function start(): self
    {
        $build = self::build();
        $cmd = ["$build/variantd", '--listen', "127.0.0.1:{$this->port}",
                '--stats-listen', "127.0.0.1:{$this->statsPort}",
                '--segments', "{$this->defs}/segments", '--content-map', "{$this->defs}/content-map",
                '--geoip-db', "$build/demo-city.mmdb", ...$this->args];
        $env = getenv();
        $env['ASAN_OPTIONS'] = $env['ASAN_OPTIONS'] ?? 'detect_leaks=1:abort_on_error=0';
        $this->proc = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', $this->log, 'a'],
                                       2 => ['file', $this->log, 'a']], $pipes, $this->root, $env);
        if (!is_resource($this->proc)) {
            throw new \RuntimeException('cannot start variantd');
        }
        $deadline = microtime(true) + 15;
        while (microtime(true) < $deadline) {
            if (!proc_get_status($this->proc)['running']) {
                throw new \RuntimeException("variantd exited:\n" . $this->logText());
            }
            // The decision port opens before the stats port: wait for both.
            $up = 0;
            foreach ([$this->port, $this->statsPort] as $port) {
                $s = @stream_socket_client("tcp://127.0.0.1:$port", $errno, $errstr, 0.2);
                if ($s !== false) {
                    fclose($s);
                    $up++;
                }
            }
            if ($up === 2) {
                return $this;
            }
            usleep(50000);
        }
        throw new \RuntimeException("variantd did not listen within 15 s:\n" . $this->logText());
    }

    /** SIGTERM, wait; returns the exit code (0 expected). */
    public function stop(): int
    {
        if ($this->proc === null) {
            return 0;
        }
        $status = proc_get_status($this->proc);
        if ($status['running']) {
            proc_terminate($this->proc, 15);
            $deadline = microtime(true) + 15;
            do {
                usleep(20000);
                $status = proc_get_status($this->proc);
            } while ($status['running'] && microtime(true) < $deadline);
            if ($status['running']) {
                proc_terminate($this->proc, 9);
                proc_close($this->proc);
                $this->proc = null;
                throw new \RuntimeException('variantd did not stop within 15 s of SIGTERM');
            }
        }
        proc_close($this->proc);
        $this->proc = null;
        return $status['signaled'] ? 128 + $status['termsig'] : $status['exitcode'];
    }

    public function logText(): string
    {
        return (string) @file_get_contents($this->log);
    }

    /** One counter of /metrics, e.g. 'variantd_rpc_calls_total{method="notification"}'. */
    public function metric(string $name): float
    {
        $text = @file_get_contents("http://127.0.0.1:{$this->statsPort}/metrics");
        if ($text === false) {
            throw new \RuntimeException('GET /metrics failed');
        }
        foreach (explode("\n", $text) as $line) {
            if (str_starts_with($line, $name . ' ')) {
                return (float) substr($line, strlen($name) + 1);
            }
        }
        throw new \RuntimeException("no metric $name in /metrics");
    }
}
