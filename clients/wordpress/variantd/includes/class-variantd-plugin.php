<?php
/*
 * The plugin: collects the page's slots before anything is rendered (the
 * [variant] shortcodes and variantd/variant blocks of the queried posts, plus
 * the `variantd_slots` filter), asks the daemon once for all of them at
 * template_redirect, and renders each slot from that one decision through a
 * template the theme can override. Goals are tracked as notifications from
 * WooCommerce's hooks or the `variantd_track` action.
 */
declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

final class Variantd_Plugin
{
    private static ?self $instance = null;

    private ?Variantd\Client $client = null;
    private ?Variantd_Visitor $visitor = null;
    /** @var array<string, ?string> slot → default variant id, in page order */
    private array $slots = [];
    /** @var array<string, array> slot → {variant, payload, segment, fallback} */
    private array $decided = [];
    private int $decideCalls = 0;
    private float $decideMs = 0.0;
    private ?string $lastError = null;

    public static function instance(): self
    {
        return self::$instance ??= new self();
    }

    public function register(): void
    {
        Variantd_Settings::register();
        add_shortcode('variant', [$this, 'shortcode']);
        add_action('init', [$this, 'register_block']);
        add_action('init', [$this, 'start_visitor'], 1);
        add_action('template_redirect', [$this, 'decide_page'], 100);   // after redirects, before output
        add_action('variantd_track', [$this, 'track'], 10, 2);
        add_action('woocommerce_thankyou', [$this, 'track_order'], 10, 1);
        add_action('woocommerce_add_to_cart', [$this, 'track_add_to_cart'], 10, 4);
    }

    /** The client, one per PHP request; its socket is persistent per php-fpm worker. */
    public function client(): Variantd\Client
    {
        if ($this->client === null) {
            $s = Variantd_Settings::get();
            $this->client = new Variantd\Client([
                'address'   => $s['address'],
                'budget_ms' => (float) $s['budget_ms'],
                'logger'    => static function (string $line): void {
                    error_log($line);
                },
            ]);
        }
        return $this->client;
    }

    public function visitor(): Variantd_Visitor
    {
        return $this->visitor ??= new Variantd_Visitor(Variantd_Settings::get(), $_SERVER, $_COOKIE);
    }

    /** At init, before any output: the vid cookie is set here when it is missing. */
    public function start_visitor(): void
    {
        if (is_admin() || wp_doing_ajax() || wp_doing_cron() || (defined('REST_REQUEST') && REST_REQUEST)) {
            return;
        }
        $this->visitor()->vid();
    }

    public function register_block(): void
    {
        wp_register_script('variantd-block-editor', plugins_url('blocks/variant/editor.js', VARIANTD_PLUGIN_FILE),
                           ['wp-blocks', 'wp-element', 'wp-block-editor', 'wp-components', 'wp-i18n'], '0.1.0', true);
        register_block_type(VARIANTD_PLUGIN_DIR . '/blocks/variant', [
            'render_callback' => [$this, 'render_block'],
        ]);
    }

    /** Adds a slot to the page's decision (for slots a theme renders outside the content). */
    public function want(string $slot, ?string $default = null): void
    {
        if ($slot !== '' && !array_key_exists($slot, $this->slots)) {
            $this->slots[$slot] = $default;
        }
    }

    /**
     * template_redirect: every slot of the queried posts, one decide. Runs
     * before the theme prints anything, so the page's headers can still say
     * that it is personal (Cache-Control: private) and how long the decision
     * took (Server-Timing).
     */
    public function decide_page(): void
    {
        global $wp_query;
        foreach (($wp_query->posts ?? []) as $post) {
            if ($post instanceof WP_Post) {
                $this->collect((string) $post->post_content);
            }
        }
        $extra = apply_filters('variantd_slots', [], $wp_query);
        foreach ((array) $extra as $k => $v) {
            is_int($k) ? $this->want((string) $v) : $this->want((string) $k, $v === null ? null : (string) $v);
        }
        if ($this->slots === []) {
            return;
        }
        $this->decide(array_keys($this->slots));
        if (!headers_sent()) {
            if (apply_filters('variantd_private_cache', true)) {
                header('Cache-Control: private, max-age=0');   // a shared cache must not give this page to another visitor
            }
            header(sprintf('Server-Timing: variantd;dur=%.2f;desc="%s"', $this->decideMs,
                           $this->lastError === null ? 'ok' : 'defaults'));
        }
    }

    /** Finds [variant slot=…] shortcodes and variantd/variant blocks in post content. */
    public function collect(string $content): void
    {
        if (str_contains($content, '[variant') &&
            preg_match_all('/' . get_shortcode_regex(['variant']) . '/s', $content, $m, PREG_SET_ORDER)) {
            foreach ($m as $sc) {
                $atts = shortcode_parse_atts($sc[3]);
                if (is_array($atts) && isset($atts['slot'])) {
                    $this->want((string) $atts['slot'], isset($atts['default']) ? (string) $atts['default'] : null);
                }
            }
        }
        if (str_contains($content, '<!-- wp:variantd/variant')) {
            $this->collect_blocks(parse_blocks($content));
        }
    }

    private function collect_blocks(array $blocks): void
    {
        foreach ($blocks as $b) {
            if (($b['blockName'] ?? '') === 'variantd/variant' && isset($b['attrs']['slot'])) {
                $this->want((string) $b['attrs']['slot'],
                            isset($b['attrs']['default']) && $b['attrs']['default'] !== '' ? (string) $b['attrs']['default'] : null);
            }
            if (!empty($b['innerBlocks'])) {
                $this->collect_blocks($b['innerBlocks']);
            }
        }
    }

    /** One decide for the given slots; the answers (or defaults) are kept for rendering. */
    private function decide(array $slots): void
    {
        $defaults = [];
        foreach ($slots as $slot) {
            $defaults[$slot] = $this->slots[$slot] ?? null;
        }
        $context = $this->visitor()->context();
        $attrs = apply_filters('variantd_attrs', $this->default_attrs());
        if (is_array($attrs)) {
            $context['attrs'] = $attrs;   // a map even when empty: the client encodes it so
        }
        $d = $this->client()->decide($slots, $context, $defaults);
        $this->decideCalls++;
        $this->decideMs += $d->elapsedMs;
        $this->lastError = $d->error;
        foreach ($slots as $slot) {
            $this->decided[$slot] = $d->slots[$slot];
        }
        do_action('variantd_decided', $d, $slots);
    }

    private function default_attrs(): array
    {
        $attrs = ['logged_in' => is_user_logged_in()];
        $user = wp_get_current_user();
        if ($user->exists() && $user->roles) {
            $attrs['role'] = (string) reset($user->roles);
        }
        return $attrs;
    }

    /** The decision for a slot; decides it on its own only if the page scan missed it. */
    public function slot(string $slot, ?string $default = null): array
    {
        if (!isset($this->decided[$slot])) {
            $this->want($slot, $default);
            $this->decide([$slot]);
        }
        return $this->decided[$slot];
    }

    /** [variant slot="home.hero" default="hero-generic"]fallback HTML[/variant] */
    public function shortcode(mixed $atts, ?string $content = null): string
    {
        $atts = shortcode_atts(['slot' => '', 'default' => ''], is_array($atts) ? $atts : [], 'variant');
        $slot = (string) $atts['slot'];
        if ($slot === '') {
            return '';
        }
        return $this->render($slot, $atts['default'] !== '' ? (string) $atts['default'] : null,
                             $content === null ? '' : do_shortcode($content));
    }

    public function render_block(array $attrs, string $content = ''): string
    {
        $slot = (string) ($attrs['slot'] ?? '');
        if ($slot === '') {
            return '';
        }
        $default = isset($attrs['default']) && $attrs['default'] !== '' ? (string) $attrs['default'] : null;
        return $this->render($slot, $default, $content);
    }

    /**
     * Renders one slot through the first template found of: the theme's
     * variantd/{slot}.php, variantd/variant.php, then the plugin's
     * templates/variant.php. The template sees $slot, $variant, $payload,
     * $segment, $fallback (true when the daemon did not choose) and $content
     * (the shortcode's enclosed HTML or the block's inner content).
     */
    public function render(string $slot, ?string $default, string $content): string
    {
        $d = $this->slot($slot, $default);
        $template = locate_template(["variantd/{$slot}.php", 'variantd/variant.php']);
        if ($template === '') {
            $template = VARIANTD_PLUGIN_DIR . '/templates/variant.php';
        }
        $template = (string) apply_filters('variantd_template', $template, $slot, $d);
        $vars = [
            'slot'     => $slot,
            'variant'  => $d['variant'],
            'payload'  => $d['payload'],
            'segment'  => $d['segment'],
            'fallback' => $d['fallback'],
            'content'  => $content,
        ];
        ob_start();
        (static function (string $__template, array $__vars): void {
            extract($__vars, EXTR_SKIP);
            include $__template;
        })($template, $vars);
        return (string) ob_get_clean();
    }

    /**
     * do_action('variantd_track', 'add_to_cart', ['value' => 20, 'category' => 'bikes']):
     * a goal as a track notification, for this visitor.
     */
    public function track(mixed $event, mixed $fields = []): void
    {
        $event = (string) $event;
        if ($event === '') {
            return;
        }
        $fields = is_array($fields) ? $fields : [];
        $v = $this->visitor();
        $base = [];
        $vid = $v->vid();
        if ($vid !== null) {
            $base['vid'] = $vid;
        }
        $consent = $v->consent();
        if ($consent !== null) {
            $base['consent'] = $consent ? 'personalization' : 'none';
        }
        $base['ts'] = time();
        $this->client()->track($event, $fields + $base);
    }

    /** WooCommerce's thank-you page: one `purchase` per order, with the order total as value. */
    public function track_order(mixed $order_id): void
    {
        $order_id = (int) $order_id;
        if ($order_id <= 0) {
            return;
        }
        $fields = [];
        if (function_exists('wc_get_order')) {
            $order = wc_get_order($order_id);
            if (!$order || $order->get_meta('_variantd_tracked')) {
                return;   // refreshed thank-you page: counted already
            }
            $fields['value'] = (float) $order->get_total();
            $order->update_meta_data('_variantd_tracked', 1);
            $order->save();
        }
        $this->track('purchase', apply_filters('variantd_order_fields', $fields, $order_id));
    }

    public function track_add_to_cart(mixed $key = '', mixed $product_id = 0, mixed $quantity = 1, mixed $variation_id = 0): void
    {
        $fields = [];
        if (function_exists('wc_get_product') && ($p = wc_get_product((int) $product_id))) {
            $fields['value'] = (float) $p->get_price() * max(1, (int) $quantity);
            $cats = wp_get_post_terms((int) $product_id, 'product_cat', ['fields' => 'slugs']);
            if (is_array($cats) && $cats) {
                $fields['category'] = (string) $cats[0];
            }
        }
        $this->track('add_to_cart', $fields);
    }

    /** For debugging and tests: decide calls made and time spent on this request. */
    public function page_stats(): array
    {
        return ['decides' => $this->decideCalls, 'ms' => $this->decideMs, 'error' => $this->lastError,
                'slots' => array_keys($this->slots)];
    }
}
