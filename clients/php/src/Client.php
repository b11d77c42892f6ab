<?php
/*
 * The variantd client: MessagePack-RPC over one persistent TCP connection per
 * process (STREAM_CLIENT_PERSISTENT: a php-fpm worker keeps it across page
 * views), a total time budget per call (connect + send + wait, default 50 ms),
 * one retry when the connection turns out to be dropped (a daemon restart or
 * its idle-timeout closed it; decide and explain are idempotent, so resending
 * is safe), and the caller's defaults on any failure: no public method throws.
 *
 *   $vd = new Variantd\Client(['address' => '127.0.0.1:7700', 'budget_ms' => 50]);
 *   $d  = $vd->decide(['home.hero'], ['ip' => $ip, 'ua' => $ua, 'vid' => $vid],
 *                     ['home.hero' => 'hero-generic']);
 *   $d->variant('home.hero'); $d->payload('home.hero');
 *   $vd->track('purchase', ['vid' => $vid, 'value' => 49.5]);
 */
declare(strict_types=1);

namespace Variantd;

final class Client
{
    public const DEFAULT_ADDRESS = '127.0.0.1:7700';
    public const DEFAULT_BUDGET_MS = 50.0;

    private string $address;
    private float $budgetMs;
    private bool $persistent;
    /** @var ?callable(string): void */
    private $logger;
    /** @var resource|null */
    private $sock = null;
    private int $msgid;
    private ?string $lastError = null;
    /** @var array{calls: int, failures: int, retries: int, connects: int, notifications: int} */
    private array $stats = ['calls' => 0, 'failures' => 0, 'retries' => 0, 'connects' => 0, 'notifications' => 0];

    /**
     * Options: address ("host:port", "[v6]:port" or "tcp://host:port"; default
     * 127.0.0.1:7700), budget_ms (total time per call, default 50), persistent
     * (default true), logger (callable receiving one line per failure).
     */
    public function __construct(array $options = [])
    {
        $address = (string) ($options['address'] ?? self::DEFAULT_ADDRESS);
        $this->address = str_contains($address, '://') ? $address : 'tcp://' . $address;
        $budget = (float) ($options['budget_ms'] ?? self::DEFAULT_BUDGET_MS);
        $this->budgetMs = $budget > 0 ? $budget : self::DEFAULT_BUDGET_MS;
        $this->persistent = (bool) ($options['persistent'] ?? true);
        $this->logger = isset($options['logger']) && is_callable($options['logger']) ? $options['logger'] : null;
        $this->msgid = random_int(1, 0x7fffffff);
    }

    /**
     * Decides the slots for one page view. $context holds the request fields
     * of the contract (ip, ua, referer, url, lang, ts, tz, vid, uid, consent,
     * attrs, hints, ...). $defaults maps a slot to its default variant id, or
     * to ['variant' => id, 'payload' => ...]; those fill every slot the daemon
     * does not answer. Never throws.
     */
    public function decide(array $slots, array $context = [], array $defaults = []): Decision
    {
        $start = hrtime(true);
        $slots = array_values(array_unique(array_map('strval', $slots)));
        $params = ['slots' => $slots] + $context;
        [$result, $error] = $this->callSafely('decide', $params);
        $answered = is_array($result) && is_array($result['slots'] ?? null) ? $result['slots'] : [];
        $out = [];
        foreach ($slots as $slot) {
            $a = $answered[$slot] ?? null;
            if (is_array($a) && isset($a['variant']) && is_string($a['variant'])) {
                $out[$slot] = ['variant' => $a['variant'], 'payload' => $a['payload'] ?? null,
                               'segment' => $a['segment'] ?? null, 'fallback' => false];
            } else {
                $out[$slot] = self::fallback($defaults[$slot] ?? null);
            }
        }
        return new Decision($out, $error, is_array($result) ? $result : [],
                            (hrtime(true) - $start) / 1e6);
    }

    /** decide with explain: the result map with context, trace and ruleset; null on failure. */
    public function explain(array $slots, array $context = []): ?array
    {
        $params = ['slots' => array_values(array_map('strval', $slots))] + $context;
        [$result] = $this->callSafely('explain', $params);
        return is_array($result) ? $result : null;
    }

    /** ping: {pong, ready, version, source, age, stale}; null on failure. */
    public function ping(): ?array
    {
        [$result] = $this->callSafely('ping', []);
        return is_array($result) ? $result : null;
    }

    /**
     * Tracks an event as a notification ([2, "track", [map]]): fire and
     * forget, nothing is awaited. $fields: vid or uid, ts, category, value,
     * consent. Returns whether the frame was handed to the kernel (not whether
     * the daemon kept it). Never throws.
     */
    public function track(string $event, array $fields = []): bool
    {
        try {
            $frame = Encoder::notification('track', ['event' => $event] + $fields);
            $deadline = hrtime(true) + (int) ($this->budgetMs * 1e6);
            for ($attempt = 0; $attempt < 2; $attempt++) {
                try {
                    $reused = $this->sock !== null;
                    $sock = $this->connection($deadline);
                    // A connection the peer has closed accepts the write and
                    // loses it: look for its EOF first.
                    if ($reused && $this->peerClosed($sock)) {
                        throw new Dropped('connection closed by the daemon');
                    }
                    $this->writeAll($sock, $frame, $deadline);
                    $this->stats['notifications']++;
                    return true;
                } catch (Dropped $e) {
                    $this->drop();
                    if ($attempt === 0 && hrtime(true) < $deadline) {
                        $this->stats['retries']++;
                        continue;
                    }
                    throw $e;
                }
            }
        } catch (\Throwable $e) {
            $this->fail('track', $e);
        }
        return false;
    }

    /** Why the last failed call failed (null if it succeeded). */
    public function lastError(): ?string
    {
        return $this->lastError;
    }

    /** Counters since this object was made: calls, failures, retries, connects (connections
     *  opened or taken from PHP's persistent pool), notifications. */
    public function stats(): array
    {
        return $this->stats;
    }

    /** Closes the connection (the next call opens a new one). */
    public function close(): void
    {
        $this->drop();
    }

    /** @return array{0: mixed, 1: ?string} the result and the error (one of them null) */
    private function callSafely(string $method, array $params): array
    {
        $this->stats['calls']++;
        try {
            $result = $this->call($method, $params);
            $this->lastError = null;
            return [$result, null];
        } catch (\Throwable $e) {
            return [null, $this->fail($method, $e)];
        }
    }

    private function fail(string $method, \Throwable $e): string
    {
        $this->stats['failures']++;
        $msg = $e instanceof RemoteError || $e instanceof TransportError
            ? $e->getMessage() : get_class($e) . ': ' . $e->getMessage();
        $this->lastError = "$method: $msg";
        if ($this->logger !== null) {
            try {
                ($this->logger)("variantd: {$this->lastError}");
            } catch (\Throwable) {
            }
        }
        return $this->lastError;
    }

    /** One request within the budget; one retry if the connection was dropped. */
    private function call(string $method, array $params): mixed
    {
        $deadline = hrtime(true) + (int) ($this->budgetMs * 1e6);
        for ($attempt = 0; ; $attempt++) {
            try {
                $sock = $this->connection($deadline);
                $msgid = $this->msgid = ($this->msgid % 0xffffffff) + 1;
                $this->writeAll($sock, Encoder::request($msgid, $method, $params), $deadline);
                return $this->readReply($sock, $msgid, $deadline);
            } catch (Dropped $e) {
                $this->drop();
                if ($attempt === 0 && hrtime(true) < $deadline) {
                    $this->stats['retries']++;
                    continue;
                }
                throw $e;
            } catch (TransportError $e) {
                // A timeout leaves a reply in flight: never reuse that stream.
                $this->drop();
                throw $e;
            }
        }
    }

    /** @return resource */
    private function connection(int $deadline)
    {
        if ($this->sock !== null && is_resource($this->sock)) {
            return $this->sock;
        }
        $this->sock = null;   // closed elsewhere (another Client on the same persistent stream)
        $remaining = ($deadline - hrtime(true)) / 1e9;
        if ($remaining <= 0) {
            throw new TransportError('time budget spent before connecting');
        }
        $flags = STREAM_CLIENT_CONNECT | ($this->persistent ? STREAM_CLIENT_PERSISTENT : 0);
        $errno = 0;
        $errstr = '';
        $sock = @stream_socket_client($this->address, $errno, $errstr, $remaining, $flags);
        if ($sock === false) {
            throw new TransportError("connect {$this->address}: " . ($errstr !== '' ? $errstr : "error $errno"));
        }
        stream_set_blocking($sock, false);
        stream_set_write_buffer($sock, 0);
        $this->stats['connects']++;
        $this->sock = $sock;
        // A persistent stream from an earlier page view of this worker may hold
        // the tail of a reply that page abandoned (it ended mid-call): read it
        // away; a stream the daemon closed since counts as dropped.
        if ($this->persistent && $this->peerClosed($sock)) {
            throw new Dropped('kept connection closed by the daemon');
        }
        return $sock;
    }

    /** @param resource $sock */
    private function peerClosed($sock): bool
    {
        $r = [$sock];
        $w = $e = null;
        if (@stream_select($r, $w, $e, 0, 0) !== 1) {
            return false;
        }
        $data = @fread($sock, 65536);   // a stray reply is discarded here, EOF reads as ''
        return $data === '' || $data === false;
    }

    /** @param resource $sock */
    private function writeAll($sock, string $frame, int $deadline): void
    {
        while ($frame !== '') {
            $n = @fwrite($sock, $frame);
            if ($n === false) {
                throw new Dropped('send failed: connection closed');
            }
            $frame = (string) substr($frame, $n);
            if ($frame === '') {
                return;
            }
            $this->wait($sock, false, $deadline);
        }
    }

    /** @param resource $sock */
    private function readReply($sock, int $msgid, int $deadline): mixed
    {
        $unpacker = new \MessagePackUnpacker(false);
        while (true) {
            $this->wait($sock, true, $deadline);
            $data = @fread($sock, 65536);
            if ($data === false || $data === '') {
                if ($data === '' && !feof($sock)) {
                    continue;
                }
                throw new Dropped('connection closed by the daemon');
            }
            $unpacker->feed($data);
            while ($unpacker->execute()) {
                $msg = $unpacker->data();
                $unpacker->reset();
                if (!is_array($msg) || count($msg) !== 4 || $msg[0] !== 1) {
                    throw new TransportError('not a MessagePack-RPC response');
                }
                if ($msg[1] !== $msgid) {
                    continue;   // the late reply of an abandoned call
                }
                if ($msg[2] !== null) {
                    $err = $msg[2];
                    $code = is_array($err) ? (string) ($err['code'] ?? 'error') : 'error';
                    $text = is_array($err) ? (string) ($err['message'] ?? '') : (string) $err;
                    throw new RemoteError("$code: $text");
                }
                return $msg[3];
            }
        }
    }

    /** Waits until the socket is readable/writable or the deadline passes. @param resource $sock */
    private function wait($sock, bool $read, int $deadline): void
    {
        while (true) {
            $left = $deadline - hrtime(true);
            if ($left <= 0) {
                throw new TransportError(sprintf('no answer within the %.0f ms budget', $this->budgetMs));
            }
            $r = $read ? [$sock] : null;
            $w = $read ? null : [$sock];
            $e = null;
            $n = @stream_select($r, $w, $e, intdiv($left, 1000000000), intdiv($left % 1000000000, 1000));
            if ($n === false) {
                throw new Dropped('select failed');
            }
            if ($n > 0) {
                return;
            }
        }
    }

    private function drop(): void
    {
        if ($this->sock !== null) {
            if (is_resource($this->sock)) {
                @fclose($this->sock);   // closes a persistent stream too
            }
            $this->sock = null;
        }
    }

    /** @return array{variant: ?string, payload: mixed, segment: null, fallback: true} */
    private static function fallback(mixed $default): array
    {
        if (is_array($default)) {
            return ['variant' => isset($default['variant']) ? (string) $default['variant'] : null,
                    'payload' => $default['payload'] ?? null, 'segment' => null, 'fallback' => true];
        }
        return ['variant' => $default === null ? null : (string) $default, 'payload' => null,
                'segment' => null, 'fallback' => true];
    }
}
