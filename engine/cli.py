"""The `konverge` command: a thin shell over the Python API.

Exit codes: 0 success, 1 invalid input, 2 usage, 3 not converged,
4 a property fails, 70 an internal error (a bug: please report it).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from . import __version__
from .errors import Diagnostic, KonvergeError, render


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except KonvergeError as e:
        sys.stderr.write(render(e.diagnostics))
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug: say so briefly, keep the traceback for those who ask
        if os.environ.get("KONVERGE_DEBUG"):
            traceback.print_exc()
        sys.stderr.write(f"konverge: internal error: {type(e).__name__}: {e}\n"
                         "this is a bug in konverge; set KONVERGE_DEBUG=1 to see the traceback\n")
        return 70


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="konverge", description="A Kubernetes control plane written as rules.")
    p.add_argument("--version", action="version", version=f"konverge {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("check", help="check spec and rule files; exit 1 if any is invalid")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--no-std", action="store_true", help="do not load the standard control plane in rules/")
    c.set_defaults(run=_check)

    f = sub.add_parser("fmt", help="rewrite files in the canonical format")
    f.add_argument("files", nargs="+", metavar="FILE")
    f.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    f.set_defaults(run=_fmt)

    r = sub.add_parser("reconcile", help="run the controllers on a spec to a fixed point")
    r.add_argument("files", nargs="+", metavar="SPEC")
    r.add_argument("--scenario", metavar="NAME|FILE",
                   help="play a scenario: the name of one declared in the specs, or a file holding one")
    r.add_argument("--data-dir", metavar="DIR", help="persist the store in DIR (default: in memory)")
    r.add_argument("--order", choices=["fixed", "random"], default="fixed", help="rule firing order")
    r.add_argument("--seed", type=int, default=0, help="seed for --order random")
    r.add_argument("--naive", action="store_true", help="re-evaluate every rule every step (the reference mode)")
    r.add_argument("--budget", type=int, default=None, metavar="STEPS", help="give up after this many steps")
    r.add_argument("-o", "--output", choices=["summary", "json"], default="summary")
    r.add_argument("--no-std", action="store_true", help="do not load the standard control plane in rules/")
    r.set_defaults(run=_reconcile)

    g = sub.add_parser("get", help="show objects from a store's data directory, without changing it")
    g.add_argument("kind", metavar="KIND", help="a kind: pod, Pod or pods")
    g.add_argument("name", nargs="?", metavar="NAME")
    scope = g.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="the namespace (default: default)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="objects in every namespace")
    g.add_argument("-o", "--output", choices=["wide", "json", "yaml", "name"], help="output format")
    g.add_argument("--data-dir", required=True, metavar="DIR", help="the store's data directory")
    g.add_argument("--spec", action="append", default=[], metavar="FILE",
                   help="spec files declaring kinds beyond the standard ones (repeatable)")
    g.set_defaults(run=_get)
    return p


def _check(args) -> int:
    from .check import check_files

    programs = check_files(args.files, std=not args.no_std)
    warnings = [w for p in programs for w in p.warnings]
    if warnings:
        sys.stderr.write(render(list(dict.fromkeys(warnings))))
    objects = sum(len(p.objects) for p in programs)
    scenarios = sum(len(p.scenarios) for p in programs)
    print(f"ok: {len(args.files)} file(s) checked as {len(programs)} program(s): {objects} objects, "
          f"{scenarios} scenarios, {len(set(warnings))} warning(s)")
    return 0


def _fmt(args) -> int:
    from .fmt import format_text
    from .parse import read_source

    diagnostics: list[Diagnostic] = []
    changed = []
    for name in args.files:
        try:
            text = read_source(name)
            formatted = format_text(text, name)
        except KonvergeError as e:
            diagnostics.extend(e.diagnostics)
            continue
        if formatted != text:
            changed.append(name)
            if not args.check:
                _write_atomically(Path(name), formatted)
    if diagnostics:
        raise KonvergeError(diagnostics)
    for name in changed:
        print(f"{'would reformat' if args.check else 'reformatted'} {name}")
    if args.check and changed:
        return 1
    if not changed:
        print(f"{len(args.files)} file(s) already formatted")
    return 0


def _reconcile(args) -> int:
    import json

    from .check import load_program
    from .fixpoint import DEFAULT_BUDGET, reconcile
    from .show import display
    from .store import open_store

    files = list(args.files)
    scenario_name = args.scenario
    if scenario_name and Path(scenario_name).is_file():
        files.append(scenario_name)
    program = load_program(files, std=not args.no_std)
    scenario = None
    if scenario_name:
        if Path(scenario_name).is_file():
            from .parse import parse_file

            declared = [d.name for d in parse_file(scenario_name).decls if hasattr(d, "items")]
            if not declared:
                raise KonvergeError(Diagnostic("E060", "this file declares no scenario", file=scenario_name))
            scenario_name = declared[0]
        scenario = program.scenarios.get(scenario_name)
        if scenario is None:
            from .names import closest

            guess = closest(scenario_name, program.scenarios)
            raise KonvergeError(Diagnostic(
                "E060", f'no scenario named "{scenario_name}"', file=", ".join(args.files),
                hint=f'did you mean "{guess}"?' if guess else
                "declared: " + (", ".join(f'"{n}"' for n in program.scenarios) or "none")), exit_code=1)
    store = open_store(args.data_dir) if args.data_dir else None
    try:
        result = reconcile(program, store=store, scenario=scenario, order=args.order, seed=args.seed,
                           naive=args.naive, budget=args.budget or DEFAULT_BUDGET)
    finally:
        if store is not None:
            store.close()
    if args.output == "json":
        doc = {
            "converged": result.converged,
            "steps": result.steps,
            "revision": result.revision,
            "clock": _number(result.clock),
            "objects": [display(program, program.kinds[o["kind"]], o) for o in result.objects],
        }
        if result.violations:
            doc["violations"] = list(result.violations)
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(_summary(result))
    if not result.converged:
        return 3
    return 4 if result.violations else 0


def _number(x):
    from fractions import Fraction

    if isinstance(x, Fraction):
        return x.numerator if x.denominator == 1 else float(x)
    return x


def _summary(result) -> str:
    from .values import format_duration

    lines = []
    if result.converged:
        lines.append(f"converged in {result.steps} steps at revision {result.revision}, "
                     f"virtual clock {format_duration(result.clock)}")
    else:
        why = {"budget": "the step budget ran out", "cycle": "the state repeats",
               "horizon": "timers are still pending at the time horizon"}.get(result.reason, result.reason)
        lines.append(f"NOT converged after {result.steps} steps ({why}), revision {result.revision}, "
                     f"virtual clock {format_duration(result.clock)}")
        if result.cycle is not None:
            lines.append(f"cycle of {result.cycle.period} steps through rule instances:")
            lines.extend(f"  {i}" for i in result.cycle.instances)
    counts: dict[str, int] = {}
    for o in result.objects:
        counts[o["kind"]] = counts.get(o["kind"], 0) + 1
    width = max([len("KIND"), *(len(k) for k in counts)])
    lines.append(f"{'KIND':<{width}}  COUNT")
    lines.extend(f"{k:<{width}}  {n}" for k, n in sorted(counts.items()))
    writes = sum(1 for w in result.trace if w.verb != "refused")
    refused = [w for w in result.trace if w.verb == "refused"]
    lines.append(f"{writes} writes, {len(refused)} refused by the API server")
    for w in refused[:10]:
        lines.append(f"  refused: {w.actor}/{w.rule} {w.kind.lower()} {w.name}: {w.message}")
    for v in result.violations:
        lines.append(f"violated: {v}")
    return "\n".join(lines) + "\n"


def _get(args) -> int:
    from .show import get_objects

    sys.stdout.write(get_objects(args.kind, args.name, data_dir=args.data_dir, namespace=args.namespace,
                                 all_namespaces=args.all_namespaces, output=args.output, specs=args.spec))
    return 0


def _write_atomically(path: Path, text: str) -> None:
    """Replace a file's text so that a crash leaves the old or the new file, never half of one."""
    tmp = path.with_name(f".{path.name}.konverge-tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise KonvergeError(Diagnostic("E001", f"cannot write this file: {e.strerror}", file=str(path)))


if __name__ == "__main__":
    sys.exit(main())
