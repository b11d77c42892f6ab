<?php
/*
 * The answer to one decide call: a variant for every slot asked for, always.
 * Where the daemon answered a slot, its variant and payload; where it did not
 * (daemon down, budget spent, unknown slot), the caller's default.
 */
declare(strict_types=1);

namespace Variantd;

final class Decision
{
    /**
     * @param array<string, array{variant: ?string, payload: mixed, segment: ?string, fallback: bool}> $slots
     * @param ?string $error  why the daemon's answer is missing (null when it answered)
     * @param array   $raw    the daemon's result map as decoded ([] on failure)
     */
    public function __construct(
        public readonly array $slots,
        public readonly ?string $error = null,
        public readonly array $raw = [],
        public readonly float $elapsedMs = 0.0,
    ) {
    }

    /** True when the daemon answered (some slots may still be defaults: unknown slots). */
    public function ok(): bool
    {
        return $this->error === null;
    }

    public function variant(string $slot): ?string
    {
        return $this->slots[$slot]['variant'] ?? null;
    }

    public function payload(string $slot): mixed
    {
        return $this->slots[$slot]['payload'] ?? null;
    }

    /** The segment of the rule that chose the variant; null for a default. */
    public function segment(string $slot): ?string
    {
        return $this->slots[$slot]['segment'] ?? null;
    }

    /** True when the slot holds the caller's default rather than the daemon's choice. */
    public function isFallback(string $slot): bool
    {
        return $this->slots[$slot]['fallback'] ?? true;
    }

    /** Unix seconds until which time alone cannot change the answer (null: never, or no answer). */
    public function validUntil(): ?int
    {
        $v = $this->raw['valid_until'] ?? null;
        return is_int($v) ? $v : null;
    }

    public function version(): ?string
    {
        $v = $this->raw['version'] ?? null;
        return is_string($v) ? $v : null;
    }
}
