<?php
/* The connection was closed under the call (daemon restart, idle-timeout): retried once. Internal: the public methods of Client never let it out. */
declare(strict_types=1);

namespace Variantd;

/** @internal */
final class Dropped extends TransportError
{
}
