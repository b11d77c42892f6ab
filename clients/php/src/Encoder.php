<?php
/*
 * MessagePack encoding of requests as the contract expects them.
 *
 * A PHP array is both a list and a map; php-msgpack packs `[]` as an array and
 * a list with a gap ([0 => 'a', 2 => 'b']) as a map. The daemon wants a map for
 * the request itself, `attrs` and `hints`, and an array of strings for
 * `slots`, whatever the PHP array looks like. So containers are written here
 * with the type the field needs, and only scalars go through msgpack_pack().
 */
declare(strict_types=1);

namespace Variantd;

final class Encoder
{
    /** Request fields whose value is a map, even when the PHP array is empty or a list. */
    private const MAP_FIELDS = ['attrs' => true, 'hints' => true];
    /** Request fields whose value is an array of strings, whatever the keys. */
    private const LIST_FIELDS = ['slots' => true];

    /** A request: [0, msgid, method, [map]]. */
    public static function request(int $msgid, string $method, array $params): string
    {
        return "\x94\x00" . msgpack_pack($msgid) . msgpack_pack($method)
            . "\x91" . self::params($params);
    }

    /** A notification: [2, method, [map]] (no reply). */
    public static function notification(string $method, array $params): string
    {
        return "\x93\x02" . msgpack_pack($method) . "\x91" . self::params($params);
    }

    /** The params map of decide/explain/track, with the contract's types per field. */
    public static function params(array $params): string
    {
        $out = self::mapHeader(count($params));
        foreach ($params as $key => $value) {
            $key = (string) $key;
            $out .= msgpack_pack($key);
            if (isset(self::LIST_FIELDS[$key]) && is_array($value)) {
                $out .= self::listOf(array_map('strval', array_values($value)));
            } elseif (isset(self::MAP_FIELDS[$key]) && is_array($value)) {
                $out .= self::map($value);
            } else {
                $out .= self::value($value);
            }
        }
        return $out;
    }

    /** Any PHP array as a map (string keys), empty included. */
    public static function map(array $a): string
    {
        $out = self::mapHeader(count($a));
        foreach ($a as $k => $v) {
            $out .= msgpack_pack((string) $k) . self::value($v);
        }
        return $out;
    }

    /** Any PHP array as an array, keys dropped. */
    public static function listOf(array $a): string
    {
        $out = self::arrayHeader(count($a));
        foreach ($a as $v) {
            $out .= self::value($v);
        }
        return $out;
    }

    /** A value of a field the contract does not type: a non-empty list is an
     *  array, any other array a map; objects are maps of their public fields. */
    public static function value(mixed $v): string
    {
        if (is_array($v)) {
            return ($v !== [] && array_is_list($v)) ? self::listOf($v) : self::map($v);
        }
        if (is_object($v)) {
            return self::map($v instanceof \JsonSerializable ? (array) $v->jsonSerialize() : get_object_vars($v));
        }
        if (is_string($v) || is_int($v) || is_float($v) || is_bool($v) || $v === null) {
            return msgpack_pack($v);
        }
        return msgpack_pack(null);
    }

    private static function mapHeader(int $n): string
    {
        if ($n < 16) {
            return chr(0x80 | $n);
        }
        return $n < 0x10000 ? "\xde" . pack('n', $n) : "\xdf" . pack('N', $n);
    }

    private static function arrayHeader(int $n): string
    {
        if ($n < 16) {
            return chr(0x90 | $n);
        }
        return $n < 0x10000 ? "\xdc" . pack('n', $n) : "\xdd" . pack('N', $n);
    }
}
