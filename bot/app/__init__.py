"""The composition root: the one wing of `bot` that constructs and wires.

Everything else under `bot/` is the platform-neutral core (stdlib + pydantic only). This
package alone imports knowledge, the LoRA voice code and the chat platforms, each lazily,
and hands them to the core through constructors: `application.App` builds the parts,
`index_operations`, `voices` and `status` are the services it assembles, `cli*` and
`serving` are the process entry points. Its settings (`config`), the schedule
(`scheduler`, APScheduler) and the Prometheus metrics (`metrics`) live here too.
"""
