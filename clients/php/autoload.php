<?php
/*
 * PSR-4 autoloader for the Variantd\ namespace, for projects that do not use
 * Composer (the WordPress plugin includes this file). With Composer, the
 * "autoload" section of composer.json does the same.
 */
declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    $prefix = 'Variantd\\';
    if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
