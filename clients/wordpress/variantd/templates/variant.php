<?php
/*
 * The default rendering of one slot. A theme overrides it with
 * variantd/{slot}.php (e.g. variantd/home.hero.php) or variantd/variant.php.
 *
 * Variables: $slot, $variant (id or null), $payload (the content map's payload:
 * any map), $segment (the rule's segment, null for a default), $fallback (true
 * when the daemon did not choose: down, slow, unknown slot), $content (the
 * shortcode's enclosed HTML / the block's inner content: shown on fallback).
 */
if (!defined('ABSPATH')) {
    exit;
}
$payload = is_array($payload) ? $payload : [];
?>
<div class="variantd-slot" data-slot="<?php echo esc_attr($slot); ?>" data-variant="<?php echo esc_attr((string) $variant); ?>" data-fallback="<?php echo $fallback ? '1' : '0'; ?>">
<?php if ($fallback && $payload === [] && $content !== '') : ?>
<?php echo $content; // the author's own HTML, already filtered by WordPress ?>
<?php else : ?>
<?php if (isset($payload['headline'])) : ?>
  <h2 class="variantd-headline"><?php echo esc_html((string) $payload['headline']); ?></h2>
<?php endif; ?>
<?php foreach (['subline', 'text'] as $k) : if (isset($payload[$k])) : ?>
  <p class="variantd-<?php echo esc_attr($k); ?>"><?php echo esc_html((string) $payload[$k]); ?></p>
<?php endif; endforeach; ?>
<?php if (isset($payload['cta_url'])) : ?>
  <a class="variantd-cta" href="<?php echo esc_url((string) $payload['cta_url']); ?>"><?php echo esc_html((string) ($payload['cta_text'] ?? __('More', 'variantd'))); ?></a>
<?php endif; ?>
<?php endif; ?>
</div>
