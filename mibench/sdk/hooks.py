"""The hooks a mibench plugin may implement, and nothing else.

Each hook receives a ``register`` callback; the plugin calls it once per class it
contributes. Every implementation is called (no "first result wins"): the registry
collects all of them and refuses a duplicate name.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT = "mibench"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[type], None]


@hookspec
def register_datasets(register: Register) -> None:
    """Register :class:`mibench.sdk.Dataset` subclasses.

    :param register: call ``register(MyDataset)`` for each dataset class.
    """


@hookspec
def register_architectures(register: Register) -> None:
    """Register :class:`mibench.sdk.Architecture` subclasses.

    :param register: call ``register(MyArchitecture)`` for each architecture class.
    """


@hookspec
def register_defenses(register: Register) -> None:
    """Register :class:`mibench.sdk.Defense` subclasses.

    :param register: call ``register(MyDefense)`` for each defense class.
    """


@hookspec
def register_attacks(register: Register) -> None:
    """Register :class:`mibench.sdk.Attack` subclasses.

    :param register: call ``register(MyAttack)`` for each attack class.
    """


@hookspec
def register_canaries(register: Register) -> None:
    """Register :class:`mibench.sdk.Canary` subclasses (canary designs for ``pool.canaries``).

    :param register: call ``register(MyCanary)`` for each canary class.
    """
