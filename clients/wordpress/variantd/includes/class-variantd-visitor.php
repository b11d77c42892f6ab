<?php
/*
 * The visitor's context from the request, as the decide call takes it: the
 * client IP (believing X-Forwarded-For only from trusted proxies), User-Agent,
 * Referer, the page URL, Accept-Language, the first-party visitor id cookie
 * (`vid`, set here when missing) and consent.
 */
declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

final class Variantd_Visitor
{
    private const VID_PATTERN = '/^[A-Za-z0-9_\-]{8,64}$/';
    private const VID_DAYS = 390;

    private ?string $vid = null;
    private bool $vidChecked = false;

    public function __construct(private array $settings, private array $server, private array $cookies)
    {
    }

    /**
     * Consent from the configured cookie: null when no consent cookie is
     * configured (the daemon's consent-default applies), else true when the
     * cookie is present and not "0", "no", "false" or "none".
     */
    public function consent(): ?bool
    {
        $name = (string) $this->settings['consent_cookie'];
        if ($name === '') {
            return null;
        }
        $v = $this->cookies[$name] ?? null;
        return $v !== null && !in_array(strtolower((string) $v), ['', '0', 'no', 'false', 'none', 'deny'], true);
    }

    /**
     * The visitor id: the cookie's if valid, else a new random one, set as a
     * first-party cookie (when consent allows: a consent cookie is configured
     * and not given means no cookie and no id). Call before output starts.
     */
    public function vid(): ?string
    {
        if ($this->vidChecked) {
            return $this->vid;
        }
        $this->vidChecked = true;
        if ($this->consent() === false) {
            return null;
        }
        $name = (string) $this->settings['vid_cookie'];
        $v = $this->cookies[$name] ?? '';
        if (is_string($v) && preg_match(self::VID_PATTERN, $v)) {
            return $this->vid = $v;
        }
        $this->vid = bin2hex(random_bytes(16));
        if (!headers_sent()) {
            setcookie($name, $this->vid, [
                'expires'  => time() + self::VID_DAYS * 86400,
                'path'     => defined('COOKIEPATH') && COOKIEPATH !== '' ? COOKIEPATH : '/',
                'domain'   => defined('COOKIE_DOMAIN') && COOKIE_DOMAIN ? COOKIE_DOMAIN : '',
                'secure'   => function_exists('is_ssl') && is_ssl(),
                'httponly' => true,
                'samesite' => 'Lax',
            ]);
        }
        return $this->vid;
    }

    /** The client IP: the peer, or when the peer is a trusted proxy the right-most
     *  X-Forwarded-For entry that is not trusted, else X-Real-IP. */
    public function ip(): ?string
    {
        $peer = (string) ($this->server['REMOTE_ADDR'] ?? '');
        if (!filter_var($peer, FILTER_VALIDATE_IP)) {
            return null;
        }
        $trusted = [];
        foreach (preg_split('/[\s,]+/', (string) $this->settings['trusted_proxies'], -1, PREG_SPLIT_NO_EMPTY) as $net) {
            $c = self::parse_cidr($net);
            if ($c !== null) {
                $trusted[] = $c;
            }
        }
        if (!self::in_nets($peer, $trusted)) {
            return $peer;
        }
        $xff = (string) ($this->server['HTTP_X_FORWARDED_FOR'] ?? '');
        $hops = array_reverse(array_filter(array_map('trim', explode(',', $xff)), 'strlen'));
        foreach ($hops as $hop) {
            if (!filter_var($hop, FILTER_VALIDATE_IP)) {
                return null;   // a forged or broken chain: no IP rather than a wrong one
            }
            if (!self::in_nets($hop, $trusted)) {
                return $hop;
            }
        }
        $real = trim((string) ($this->server['HTTP_X_REAL_IP'] ?? ''));
        if ($real !== '' && filter_var($real, FILTER_VALIDATE_IP) && !self::in_nets($real, $trusted)) {
            return $real;
        }
        return null;   // only proxies: never decide on a proxy's own address
    }

    /** The decide fields for this request (slots excluded). */
    public function context(): array
    {
        $ctx = [];
        $ip = $this->ip();
        if ($ip !== null) {
            $ctx['ip'] = $ip;
        }
        foreach (['ua' => 'HTTP_USER_AGENT', 'referer' => 'HTTP_REFERER', 'lang' => 'HTTP_ACCEPT_LANGUAGE'] as $k => $h) {
            $v = (string) ($this->server[$h] ?? '');
            if ($v !== '') {
                $ctx[$k] = substr($v, 0, 2048);
            }
        }
        $url = $this->url();
        if ($url !== null) {
            $ctx['url'] = $url;
        }
        $vid = $this->vid();
        if ($vid !== null) {
            $ctx['vid'] = $vid;
        }
        $consent = $this->consent();
        if ($consent !== null) {
            $ctx['consent'] = $consent ? 'personalization' : 'none';
        }
        return $ctx;
    }

    /** The page URL as the visitor asked for it (home's scheme and host, the request's path). */
    public function url(): ?string
    {
        $uri = (string) ($this->server['REQUEST_URI'] ?? '');
        if ($uri === '' || $uri[0] !== '/') {
            return null;
        }
        $home = function_exists('home_url') ? home_url('/') : '';
        $parts = $home !== '' ? wp_parse_url($home) : false;
        if (!is_array($parts) || !isset($parts['host'])) {
            return null;
        }
        $origin = ($parts['scheme'] ?? 'http') . '://' . $parts['host'] . (isset($parts['port']) ? ':' . $parts['port'] : '');
        return substr($origin . $uri, 0, 4096);
    }

    /** "10.0.0.0/8", "::1", "2001:db8::/32" → [packed network, prefix bits]; null if invalid. */
    public static function parse_cidr(string $net): ?array
    {
        [$addr, $bits] = array_pad(explode('/', trim($net), 2), 2, null);
        $packed = @inet_pton((string) $addr);
        if ($packed === false) {
            return null;
        }
        $max = strlen($packed) * 8;
        if ($bits === null) {
            $bits = $max;
        } elseif (!ctype_digit($bits) || (int) $bits > $max) {
            return null;
        }
        return [$packed, (int) $bits];
    }

    /** @param list<array{0: string, 1: int}> $nets */
    public static function in_nets(string $ip, array $nets): bool
    {
        $p = @inet_pton($ip);
        if ($p === false) {
            return false;
        }
        foreach ($nets as [$net, $bits]) {
            if (strlen($net) !== strlen($p)) {
                continue;
            }
            $whole = intdiv($bits, 8);
            if (strncmp($p, $net, $whole) !== 0) {
                continue;
            }
            $rest = $bits % 8;
            if ($rest === 0) {
                return true;
            }
            $mask = (0xff << (8 - $rest)) & 0xff;
            if ((ord($p[$whole]) & $mask) === (ord($net[$whole]) & $mask)) {
                return true;
            }
        }
        return false;
    }
}
