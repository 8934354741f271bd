"""Reads a Chrome JSON trace-event file with nothing but Python's standard library, and
prints what a trace viewer would draw, as one JSON object: the thread tracks, the
complete slices, the instant markers, the task lives, each flow resolved to the slices it
binds to (the innermost slice on its thread that encloses its time, as Perfetto binds a
flow), and the counters' points.

An independent reader of what `taskscope export --perfetto` writes: it shares no code
with the writer (tests/src/trace.rs runs it)."""

import json
import sys


def main(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    events = doc["traceEvents"]
    threads, slices, flows, lives, process = {}, [], {}, {}, None
    instants = []
    counters = {}
    for e in events:
        ph = e["ph"]
        if ph == "M" and e["name"] == "thread_name":
            threads[e["tid"]] = e["args"]["name"]
        elif ph == "M" and e["name"] == "process_name":
            process = e["args"]["name"]
        elif ph == "X":
            slices.append({
                "tid": e["tid"], "name": e["name"], "cat": e["cat"],
                "ts": e["ts"], "dur": e["dur"], "args": e.get("args", {}),
            })
        elif ph == "i":
            instants.append({
                "tid": e["tid"], "name": e["name"], "cat": e["cat"], "ts": e["ts"],
            })
        elif ph in ("s", "f"):
            end = "from" if ph == "s" else "to"
            flows.setdefault(e["id"], {"name": e["name"]})[end] = (e["tid"], e["ts"])
        elif ph == "C":
            (value,) = e["args"].values()
            counters.setdefault(e["name"], []).append({"ts": e["ts"], "value": value})
        elif ph in ("b", "e"):
            life = lives.setdefault(e["id"], {"name": e["name"]})
            life["start" if ph == "b" else "end"] = e["ts"]
            if ph == "b":
                life["task_id"] = e["args"]["task_id"]

    def enclosing(tid, ts):
        inside = [s for s in slices
                  if s["tid"] == tid and s["ts"] <= ts <= s["ts"] + s["dur"]]
        return min(inside, key=lambda s: s["dur"]) if inside else None

    resolved = []
    for flow in flows.values():
        source = enclosing(*flow["from"]) if "from" in flow else None
        target = enclosing(*flow["to"]) if "to" in flow else None
        resolved.append({
            "name": flow["name"],
            "from_task": source["args"].get("task_id") if source else None,
            "to_task": target["args"].get("task_id") if target else None,
            "to_ts": flow["to"][1] if "to" in flow else None,
        })
    print(json.dumps({
        "process": process,
        "threads": {str(tid): name for tid, name in threads.items()},
        "slices": slices,
        "instants": instants,
        "flows": resolved,
        "lives": list(lives.values()),
        "counters": counters,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
