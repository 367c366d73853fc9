"""The data protocols, one strategy object each (:class:`~mibench.engine.protocols.base.Protocol`).

A protocol owns everything that differs between evaluation designs: its splits and
their keys, the models and attack jobs a cell adds to the plan, what it refuses in a
grid, what an attack sees of targets and references, and how per-target results
become rows. No other module of mibench branches on a protocol's name: the grid's
``protocol:`` names a strategy in the registry (:data:`BUILTIN`, plus any added with
``Registry.add_protocol``) and the rest of the engine calls its methods.

This package's ``__init__`` imports nothing, so a module that needs only one
protocol's splits does not pull in another's planning code.
"""

# name -> "module:class" of each built-in protocol, imported when a grid asks for it
BUILTIN: dict[str, str] = {
    "paper": "mibench.engine.protocols.paper:PaperProtocol",
    "pool": "mibench.engine.protocols.pool:PoolProtocol",
}
