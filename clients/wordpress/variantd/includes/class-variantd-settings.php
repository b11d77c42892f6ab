<?php
/*
 * The plugin's settings (one option, `variantd_settings`) and the page under
 * Settings → variantd that edits them.
 */
declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

final class Variantd_Settings
{
    public const OPTION = 'variantd_settings';

    public const DEFAULTS = [
        'address'         => '127.0.0.1:7700',  // the daemon's decision port (listen)
        'budget_ms'       => 50,                // total time per call, page waits at most this
        'consent_cookie'  => '',                // cookie whose presence means consent; '' = the site decides elsewhere
        'trusted_proxies' => '127.0.0.0/8, ::1',// peers whose X-Forwarded-For is believed
        'vid_cookie'      => 'vid',             // first-party visitor id cookie
    ];

    /** The settings, defaults filled in. */
    public static function get(): array
    {
        $saved = get_option(self::OPTION, []);
        return array_merge(self::DEFAULTS, is_array($saved) ? $saved : []);
    }

    public static function register(): void
    {
        add_action('admin_menu', [self::class, 'menu']);
        add_action('admin_init', [self::class, 'fields']);
    }

    public static function menu(): void
    {
        add_options_page('variantd', 'variantd', 'manage_options', 'variantd', [self::class, 'page']);
    }

    public static function fields(): void
    {
        register_setting('variantd', self::OPTION, [
            'type' => 'array',
            'sanitize_callback' => [self::class, 'sanitize'],
            'default' => self::DEFAULTS,
        ]);
        add_settings_section('variantd_main', __('Decision daemon', 'variantd'), '__return_false', 'variantd');
        $fields = [
            'address'         => __('Address (host:port of the decision port)', 'variantd'),
            'budget_ms'       => __('Time budget per page (ms)', 'variantd'),
            'consent_cookie'  => __('Consent cookie name (empty: no consent check)', 'variantd'),
            'trusted_proxies' => __('Trusted proxies (CIDR list)', 'variantd'),
            'vid_cookie'      => __('Visitor id cookie name', 'variantd'),
        ];
        foreach ($fields as $key => $label) {
            add_settings_field("variantd_$key", $label, [self::class, 'field'], 'variantd', 'variantd_main',
                               ['key' => $key, 'label_for' => "variantd_$key"]);
        }
    }

    public static function field(array $args): void
    {
        $key = $args['key'];
        $value = self::get()[$key];
        printf('<input type="%s" id="variantd_%s" name="%s[%s]" value="%s" class="regular-text" />',
               $key === 'budget_ms' ? 'number' : 'text', esc_attr($key), esc_attr(self::OPTION),
               esc_attr($key), esc_attr((string) $value));
    }

    /** Bad values fall back to the defaults, never to something that blocks pages. */
    public static function sanitize(mixed $in): array
    {
        $in = is_array($in) ? $in : [];
        $out = self::DEFAULTS;
        $address = trim((string) ($in['address'] ?? ''));
        if (preg_match('/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):\d{1,5}$/', $address)) {
            $out['address'] = $address;
        }
        $budget = (int) ($in['budget_ms'] ?? 0);
        if ($budget >= 1 && $budget <= 5000) {
            $out['budget_ms'] = $budget;
        }
        $out['consent_cookie'] = preg_replace('/[^A-Za-z0-9_\-.]/', '', (string) ($in['consent_cookie'] ?? ''));
        $proxies = [];
        foreach (preg_split('/[\s,]+/', (string) ($in['trusted_proxies'] ?? ''), -1, PREG_SPLIT_NO_EMPTY) as $net) {
            if (Variantd_Visitor::parse_cidr($net) !== null) {
                $proxies[] = $net;
            }
        }
        $out['trusted_proxies'] = implode(', ', $proxies);
        $vid = preg_replace('/[^A-Za-z0-9_\-]/', '', (string) ($in['vid_cookie'] ?? ''));
        $out['vid_cookie'] = $vid !== '' ? $vid : self::DEFAULTS['vid_cookie'];
        return $out;
    }

    public static function page(): void
    {
        if (!current_user_can('manage_options')) {
            return;
        }
        echo '<div class="wrap"><h1>variantd</h1><form action="options.php" method="post">';
        settings_fields('variantd');
        do_settings_sections('variantd');
        submit_button();
        echo '</form></div>';
    }
}
