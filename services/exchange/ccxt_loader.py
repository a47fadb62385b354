"""ccxt without its 100+ exchanges: only the configured ones are imported.

`import ccxt.async_support` runs ccxt's package `__init__` files, which import every
exchange ccxt supports, sync and async: about 95 MiB of RSS, for the one or two a
configuration names (one exchange module costs ~45 MiB less). `async_support()` installs
the two packages with their own `__init__` minus the exchange imports, and a module
`__getattr__` that imports an exchange on first use (`ccxt.async_support.okx`), so
everything else that reads ccxt (errors, constants, `ccxt.binance`) still finds it. When
ccxt was imported before, whole, that is what is used.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

# An `__init__` line importing one exchange (`from ccxt.async_support.okx import okx`).
_EXCHANGE_IMPORT = re.compile(
    r"^from ccxt\.(async_support\.)?(?!base\b)[a-z0-9_]+ import [a-z0-9_]+\s*(#.*)?$"
)


def async_support() -> Any:
    """The `ccxt.async_support` module, its exchanges imported on first use."""
    if "ccxt.async_support" in sys.modules:
        return sys.modules["ccxt.async_support"]
    if "ccxt" not in sys.modules:
        spec = importlib.util.find_spec("ccxt")
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError("ccxt is not installed")
        _install("ccxt", Path(spec.origin).parent)
    root = Path(sys.modules["ccxt"].__path__[0])
    return _install("ccxt.async_support", root / "async_support")


def _install(name: str, directory: Path) -> types.ModuleType:
    init = directory / "__init__.py"
    source = "\n".join(
        line for line in init.read_text().splitlines() if not _EXCHANGE_IMPORT.match(line)
    )
    module = types.ModuleType(name)
    module.__path__ = [str(directory)]
    module.__package__ = name
    module.__file__ = str(init)
    sys.modules[name] = module
    if "." in name:
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)

    def exchange(attribute: str) -> Any:
        if attribute not in module.__dict__.get("exchanges", ()):
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        cls = getattr(importlib.import_module(f"{name}.{attribute}"), attribute)
        setattr(module, attribute, cls)
        return cls

    module.__getattr__ = exchange  # type: ignore[method-assign]
    try:
        exec(compile(source, str(init), "exec"), module.__dict__)  # noqa: S102 - ccxt's own source
    except BaseException:
        del sys.modules[name]
        raise
    return module
