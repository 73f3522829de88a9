"""
Reads OpenLineage events (JSON lines, as backfill's file transport writes them) with
OpenLineage's own Python client, `openlineage-python`:

* every event is rebuilt as the client's RunEvent, and every facet as the client's class for
  the schema its `_schemaURL` names (a facet, a field or a facet version the client does not
  know is an error, and so is a missing required field or a run id that is not a UUID);
* the rebuilt event, serialized by the client's own Serde, must be the event as it was read
  (but for the empty lists and objects the client writes for absent ones);
* with --emit-url, the client then sends the rebuilt events with its own HTTP transport (and
  the API key of --api-key), for a comparison with what backfill's transport sent.

Prints what the client's objects say (runs, parents, datasets, rows, assertions) as JSON.
"""

import argparse
import importlib
import inspect
import json
import pkgutil
import sys
import types
import typing
from enum import Enum

import attr
import openlineage.client.generated as generated
from openlineage.client.event_v2 import RunEvent
from openlineage.client.generated.base import BaseFacet
from openlineage.client.serde import Serde

FACETS = {}
for module_info in pkgutil.iter_modules(generated.__path__):
    module = importlib.import_module(f"openlineage.client.generated.{module_info.name}")
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ == module.__name__ and attr.has(cls) and issubclass(cls, BaseFacet):
            FACETS[cls._get_schema()] = cls


def resolved_fields(cls):
    namespace = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__ in sys.modules:
            namespace.update(vars(sys.modules[klass.__module__]))
    attr.resolve_types(cls, globalns=namespace)
    return {f.name: f for f in attr.fields(cls)}


def construct(cls, value, where):
    if not isinstance(value, dict):
        raise TypeError(f"{where}: {cls.__name__} needs an object, got {value!r}")
    fields = resolved_fields(cls)
    kwargs = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            raise TypeError(f"{where}: the client's {cls.__name__} has no field {key!r}")
        if not field.init:
            continue  # set by the class itself (_schemaURL): the round trip compares it
        kwargs[field.alias] = build(field.type, item, f"{where}.{key}")
    return cls(**kwargs)


def facet(value, where):
    url = value.get("_schemaURL") if isinstance(value, dict) else None
    cls = FACETS.get(url)
    if cls is None:
        raise TypeError(f"{where}: {url!r} names no facet the client knows")
    return construct(cls, value, where)


def build(tp, value, where):
    if tp is typing.Any:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        problems = []
        for member in (a for a in args if a is not type(None)):
            if attr.has(member) and isinstance(value, dict) and "type" in value:
                kind = next((f.default for f in attr.fields(member) if f.name == "type"), None)
                if isinstance(kind, str) and kind != value["type"]:
                    continue
            try:
                return build(member, value, where)
            except (TypeError, ValueError) as problem:
                problems.append(str(problem))
        raise TypeError(f"{where}: fits none of {args}: {problems}")
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"{where}: needs a list")
        return [build(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{where}: needs an object")
        item_type = args[1]
        if inspect.isclass(item_type) and issubclass(item_type, BaseFacet):
            return {key: facet(item, f"{where}.{key}") for key, item in value.items()}
        return {key: build(item_type, item, f"{where}.{key}") for key, item in value.items()}
    if inspect.isclass(tp) and issubclass(tp, Enum):
        return tp(value)
    if attr.has(tp):
        return construct(tp, value, where)
    if tp in (str, int, float, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise TypeError(f"{where}: needs {tp.__name__}, got {value!r}")
        return value
    raise TypeError(f"{where}: cannot read type {tp!r}")


def without_empty(value):
    """The value without empty lists and objects: the client fills in absent collections as empty ones."""
    if isinstance(value, dict):
        pruned = {k: without_empty(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v != {} and v != []}
    if isinstance(value, list):
        return [without_empty(v) for v in value]
    return value


def summary(event):
    parent = event.run.facets.get("parent")
    return {
        "eventType": event.eventType.value,
        "job": f"{event.job.namespace}/{event.job.name}",
        "runId": event.run.runId,
        "parentRunId": parent.run.runId if parent else None,
        "rootRunId": parent.root.run.runId if parent and parent.root else None,
        "facets": sorted(event.run.facets),
        "inputs": [f"{d.namespace}/{d.name}" for d in event.inputs],
        "outputs": [
            {
                "dataset": f"{d.namespace}/{d.name}",
                "fields": [f.name for f in d.facets["schema"].fields] if "schema" in d.facets else None,
                "rowCount": d.outputFacets["outputStatistics"].rowCount if "outputStatistics" in d.outputFacets else None,
                "assertions": [[a.name, a.success] for a in d.outputFacets["dataQualityAssertions"].assertions]
                if "dataQualityAssertions" in d.outputFacets
                else None,
            }
            for d in event.outputs
        ],
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--emit-url")
    parser.add_argument("--api-key")
    options = parser.parse_args()

    events = []
    for path in options.files:
        with open(path) as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                read = json.loads(line)
                event = construct(RunEvent, read, f"{path}:{number}")
                written = Serde.to_dict(event)
                if without_empty(written) != without_empty(read):
                    print(json.dumps({"error": f"{path}:{number} changed in the client's hands", "read": read, "written": written}))
                    sys.exit(1)
                events.append(event)

    if options.emit_url:
        from openlineage.client import OpenLineageClient
        from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

        auth = ApiKeyTokenProvider({"apiKey": options.api_key}) if options.api_key else None
        config = HttpConfig(url=options.emit_url, **({"auth": auth} if auth else {}))
        client = OpenLineageClient(transport=HttpTransport(config))
        for event in events:
            client.emit(event)

    print(json.dumps([summary(e) for e in events]))


if __name__ == "__main__":
    main()
