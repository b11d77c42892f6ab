<?php
/**
 * Plugin Name:       variantd
 * Description:       Personalized content slots decided by a variantd daemon: a [variant slot="home.hero"] shortcode and a block, one decision per page, the defaults when the daemon is away, and goal tracking for WooCommerce-style shops.
 * Version:           0.1.0
 * Requires at least: 6.1
 * Requires PHP:      8.2
 * License:           MIT
 * Text Domain:       variantd
 */

declare(strict_types=1);

if (!defined('ABSPATH')) {
    exit;
}

define('VARIANTD_PLUGIN_FILE', __FILE__);
define('VARIANTD_PLUGIN_DIR', __DIR__);

// The PHP client (clients/php): from Composer if the site uses it, else the
// copy bundled in lib/ (a symlink to ../../php in the repository).
if (!class_exists('Variantd\\Client')) {
    require_once __DIR__ . '/lib/variantd-client/autoload.php';
}

require_once __DIR__ . '/includes/class-variantd-settings.php';
require_once __DIR__ . '/includes/class-variantd-visitor.php';
require_once __DIR__ . '/includes/class-variantd-plugin.php';

Variantd_Plugin::instance()->register();
