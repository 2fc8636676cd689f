"""House conventions checked over the whole of hw/: one constructor convention for components.

Every ``wiring.Component`` in ``hw/`` takes its parameters as keyword-only arguments (a block
with many may also take one validated ``Params`` object as the keyword ``params``), so a call
reads the same everywhere and a parameter can never be passed in the wrong position.
"""

import importlib
import inspect
import pkgutil

from amaranth.lib import wiring

import scoville.hw


def _components():
    for info in pkgutil.walk_packages(scoville.hw.__path__, "scoville.hw."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, wiring.Component) and obj.__module__ == module.__name__
                    and "__init__" in vars(obj)):
                yield obj


def test_component_constructors_are_keyword_only():
    bad = []
    for cls in _components():
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
            if p.kind not in (p.KEYWORD_ONLY, p.VAR_KEYWORD):
                bad.append(f"{cls.__module__}.{cls.__qualname__}: parameter {p.name!r} is positional")
    assert not bad, "components must take keyword-only parameters:\n" + "\n".join(bad)
