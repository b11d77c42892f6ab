<?php
/* The transport failed (connect refused, budget spent, not a MessagePack-RPC reply): not retried. Internal: the public methods of Client never let it out. */
declare(strict_types=1);

namespace Variantd;

/** @internal */
class TransportError extends \RuntimeException
{
}
