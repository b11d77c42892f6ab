<?php
/* The daemon answered with an error map {code, message}. Internal: the public methods of Client never let it out. */
declare(strict_types=1);

namespace Variantd;

/** @internal */
final class RemoteError extends \RuntimeException
{
}
