"""The `konverge` command: a thin shell over the Python API.

Exit codes: 0 success, 1 invalid input, 2 usage, 3 not converged,
4 a property fails, 70 an internal error (a bug: please report it).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import gc
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from . import __version__
from .errors import Diagnostic, KonvergeError, located, render
from .files import write_atomically


def main(argv: list[str] | None = None, *, exiting: bool = False) -> int:
    """The command line; its exit code. `exiting`: the process ends as this returns (the console
    script), so a command that makes one run leaves the cycle collector off to the end."""
    # A reconcile keeps a large heap that lives long (the cache, the memo, the trace) and makes
    # little cyclic garbage, which reference counting does not free. Engine.run keeps the
    # collector off while it steps; outside it (loading a spec, verify's copies of a run between
    # its examples) the default thresholds would walk that heap again and again as it grows.
    # Collect young objects less often, and old ones only rarely.
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 20, 20)
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help(sys.stderr)
            return 2
        if exiting and getattr(args, "one_run", False):
            # Engine.run keeps the collector off while it steps; on again, its first pass would
            # walk all the run made (a second, at 10,000 pods), to find almost nothing: the run
            # lives to the end, and the one garbage it leaves in cycles is itself.
            gc.disable()
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
        if _output_refused(e):  # as run() says it of the last buffer
            sys.stderr.write(f"konverge: cannot write the output: {e.strerror}\n")
            return 1
        if isinstance(e, ModuleNotFoundError) and e.name and e.name.split(".")[0] != __package__:
            # run from a source tree with a Python that lacks a dependency
            sys.stderr.write(f"konverge: the Python package `{e.name}` is not installed for {sys.executable}\n"
                             "  = hint: install konverge with its dependencies: pip install .  (in a venv)\n")
            return 1
        if os.environ.get("KONVERGE_DEBUG"):
            traceback.print_exc()
        sys.stderr.write(f"konverge: internal error: {type(e).__name__}: {e}\n"
                         "this is a bug in konverge; set KONVERGE_DEBUG=1 to see the traceback\n")
        return 70
    finally:
        gc.set_threshold(*thresholds)


def _output_refused(e: Exception) -> bool:
    """Whether `e` is standard output refusing a write (a full disk, a quota, an I/O error) in
    the middle of a long output: the files konverge writes itself say their own errors, with
    their names."""
    return (isinstance(e, OSError) and e.filename is None
            and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO))


def _steps(text: str) -> int:
    """A step budget: a whole number of steps, at least one (none would stop a run before it began)."""
    try:
        steps = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of steps") from None
    if steps < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 step, not {steps}")
    return steps


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="konverge", description="A Kubernetes control plane written as rules.")
    p.add_argument("--version", action="version", version=f"konverge {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("check", help="check spec and rule files; exit 1 if any is invalid")
    c.add_argument("files", nargs="+", metavar="FILE")
    no_std_option(c)
    c.set_defaults(run=_check)

    f = sub.add_parser("fmt", help="rewrite files in the canonical format")
    f.add_argument("files", nargs="+", metavar="FILE")
    f.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    f.set_defaults(run=_fmt)

    r = sub.add_parser("reconcile", help="run the controllers on a spec to a fixed point")
    r.add_argument("files", nargs="+", metavar="SPEC",
                   help=".konv specs and Kubernetes manifests (.yaml, .yml, .json), mixed freely, or directories")
    r.add_argument("--scenario", metavar="NAME|FILE",
                   help="play a scenario: the name of one declared in the specs, or a file holding one")
    r.add_argument("--data-dir", metavar="DIR", help="persist the store in DIR (default: in memory)")
    r.add_argument("--order", choices=["fixed", "random"], default="fixed", help="rule firing order")
    r.add_argument("--seed", type=int, default=0, help="seed for --order random")
    r.add_argument("--naive", action="store_true", help="re-evaluate every rule every step (the reference mode)")
    r.add_argument("--budget", type=_steps, default=None, metavar="STEPS", help="give up after this many steps")
    r.add_argument("--follow", metavar="FILE", help="fire the rule instances listed in FILE first, in that order "
                                                    "(a firing path `verify --exhaustive` wrote), then go on")
    r.add_argument("-o", "--output", choices=["summary", "json", "yaml"], default="summary",
                   help="a summary table, or the JSON contract (README: The JSON contract) as JSON or YAML")
    no_std_option(r)
    r.set_defaults(run=_reconcile, one_run=True)

    g = sub.add_parser("get", help="show objects, kubectl-style: of a reconcile run in memory (SPEC…) "
                                   "or of a store's data directory (--data-dir)")
    g.add_argument("kind", metavar="KIND", help="a kind: pod, Pod, pods or po; or KIND/NAME")
    g.add_argument("name", nargs="*", metavar="[NAME] [SPEC…]",
                   help="an object's name, then specs and manifests to reconcile (files ending in .konv, "
                        ".yaml, .yml or .json, or directories)")
    scope = g.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="the namespace (default: default)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="objects in every namespace")
    g.add_argument("-o", "--output", choices=["wide", "json", "yaml", "name"], help="output format")
    g.add_argument("-l", "--selector", metavar="SELECTOR",
                   help="a label selector, as kubectl takes it: app=web, app!=web, 'tier in (a,b)', "
                        "'tier notin (a)', tier, '!tier'; a comma is AND")
    g.add_argument("-L", "--label-columns", action="append", default=[], metavar="KEY[,KEY…]",
                   help="a column for each of these labels' values, headed by the key's last part in capitals "
                        "(-L topology.kubernetes.io/zone: ZONE); repeatable")
    g.add_argument("--show-labels", action="store_true", help="a last column, LABELS, with all the labels")
    _run_options(g)
    g.set_defaults(run=_get, one_run=True)

    d = sub.add_parser("describe", help="describe an object, kubectl-style, with its events and write history")
    d.add_argument("kind", metavar="KIND/NAME", help="pod/web-1, or KIND then NAME")
    d.add_argument("name", nargs="*", metavar="[NAME] [SPEC…]")
    d.add_argument("-n", "--namespace", help="the namespace (default: default)")
    _run_options(d)
    d.set_defaults(run=_describe, one_run=True)

    v = sub.add_parser("verify", help="check the spec's properties under generated fault sequences (hypothesis)")
    v.add_argument("files", nargs="+", metavar="SPEC", help=".konv specs")
    v.add_argument("--examples", type=int, default=None, metavar="N", help="fault sequences to try (default 20)")
    v.add_argument("--seed", type=int, default=None, metavar="S",
                   help="make the run reproducible (it then neither reads nor writes the example database)")
    v.add_argument("--faults", metavar="LIST", help="comma-separated faults to draw from (default: all declared "
                                                        "and the engine's — partial, stale, drop, reject — but "
                                                        "those that never settle alone, such as a crash loop)")
    v.add_argument("--scenario", metavar="NAME|FILE", help="also play this scenario and check its expects (with "
                                                          "--exhaustive: on every path, under the search's faults)")
    v.add_argument("--no-deletions", action="store_true", help="generate no object deletions")
    v.add_argument("--strict-orders", action="store_true",
                   help="a random firing order must reach the same objects field by field")
    v.add_argument("--out", metavar="FILE", help="where to write a counterexample (default: SPEC.counterexample.konv)")
    v.add_argument("--budget", type=_steps, default=None, metavar="STEPS", help="steps per run before giving up")
    no_std_option(v)
    v.add_argument("--no-db", action="store_true",
                   help="keep no example database (default: .konverge-verify/ beside the spec, where a failure "
                        "found is kept and tried first next time)")
    x = v.add_argument_group("exhaustive search (small specs)")
    x.add_argument("--exhaustive", action="store_true",
                   help="explore every firing order and fault placement, with state hashing, instead of sampling")
    x.add_argument("--max-nodes", type=int, metavar="K", help="try every scope from 1 node up to K (the first K "
                                                               "nodes the spec declares), smallest first")
    x.add_argument("--max-pods", type=int, metavar="M", help="… and from 1 pod up to M (replicas cut down so that "
                                                              "the spec makes at most M pods)")
    x.add_argument("--max-states", type=int, metavar="N", help="states to explore per scope before stopping "
                                                                "(default 10000)")
    x.add_argument("--max-faults", type=int, metavar="N", help="faults per path, the program's and the engine's "
                                                                "(default 1)")
    v.set_defaults(run=_verify)

    from .kube.views import add_commands  # explain, why-pending, trace, route

    add_commands(sub)
    return p


def _verify(args) -> int:
    from .fixpoint import DEFAULT_BUDGET
    from .verify import PROPERTIES, counterexample_text, default_database, default_out, explanation, verify

    if args.exhaustive:
        return _exhaustive(args)
    given = [f"--{o.replace('_', '-')}" for o in ("max_nodes", "max_pods", "max_states", "max_faults")
             if getattr(args, o) is not None]
    if given:
        raise KonvergeError(Diagnostic("E070", f"{given[0]} bounds the exhaustive search",
                                       hint=f"add --exhaustive: konverge verify SPEC --exhaustive {given[0]} N"),
                            exit_code=2)
    args.examples = 20 if args.examples is None else args.examples
    if args.examples < 1:
        raise KonvergeError(Diagnostic("E070", "--examples must be at least 1"))
    program, scenario, manifests = _load_run(args.files, args.scenario, no_std=args.no_std)
    _no_manifest_objects(manifests)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()] if args.faults is not None else None
    report = verify(program, examples=args.examples, seed=args.seed, faults=faults, scenario=scenario,
                    deletions=not args.no_deletions, budget=args.budget or DEFAULT_BUDGET,
                    strict_orders=args.strict_orders,
                    database=None if args.no_db else default_database(args.files[0]),
                    database_key=" ".join(str(Path(f).resolve()) for f in args.files))
    for skipped in report.skipped_faults:
        sys.stderr.write(f"note: fault {skipped} is not generated\n")
    failure = report.failure
    if failure is None:
        from rich import box
        from rich.console import Console
        from rich.table import Table

        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("PROPERTY")
        table.add_column("EXAMPLES PASSED", justify="right")
        for prop in PROPERTIES:
            checked = report.checked.get(prop, 0)
            note = "" if checked == report.examples else f" (of {report.examples}: a sample)"
            table.add_row(prop, f"{report.passed.get(prop, 0)}/{checked}{note}")
        Console(file=sys.stdout, width=200, color_system=None, highlight=False).print(table)
        print(f"all properties hold on {report.examples} example(s) in {report.elapsed:.1f}s; "
              f"at most {report.settle_steps} step(s) to settle after the last event")
        return 0
    from .values import format_duration

    out = Path(args.out) if args.out else default_out(args.files[0])
    options = " --no-std" if args.no_std else ""  # what `reconcile` needs to run the same program
    write_atomically(out, counterexample_text(failure, args.files[0], options))
    print(f"property violated: {failure.property}")
    print(f"  {failure.message}")
    print(f"  at step {failure.steps}, virtual clock {format_duration(failure.clock)}")
    for line in failure.details:
        print(f"  {line}")
    for line in explanation(program, failure):
        print(f"  {line}" if line else "")
    replay = options + (f" {failure.replay}" if failure.replay else "")
    print(f"shrunk counterexample ({report.examples} example(s) run, {report.elapsed:.1f}s) written to {out}")
    print(f"replay: konverge reconcile {' '.join(args.files)} --scenario {out}{replay}")
    return 4


def _no_manifest_objects(manifests) -> None:
    """`verify` drives the program's own objects: a manifest's would be left out of every run,
    and the properties would hold of a cluster without them, so they are refused."""
    if manifests.declared:
        raise KonvergeError(Diagnostic(
            "E070", "verify reads .konv specs only; the objects of this manifest would be left out",
            file=manifests.declared[0][2].file,
            hint="declare them in a .konv spec to verify them; `konverge reconcile` reads manifests"), exit_code=2)


def _exhaustive(args) -> int:
    """`verify --exhaustive`: every firing order and fault placement, in every scope up to
    --max-nodes/--max-pods if given (engine/explore.py, engine/kube/scope.py)."""
    from .explore import DEFAULT_MAX_FAULTS, DEFAULT_MAX_STATES, explore

    unused = [name for name, value in (("--examples", args.examples), ("--seed", args.seed),
                                       ("--budget", args.budget),
                                       ("--strict-orders", args.strict_orders or None)) if value is not None]
    if unused:
        raise KonvergeError(Diagnostic("E070", f"{unused[0]} has no effect with --exhaustive",
                                       hint="the exhaustive search tries every firing order, with no sampling, "
                                            "seed or step budget; drop the option"),
                            exit_code=2)
    for name in ("max_nodes", "max_pods", "max_states"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise KonvergeError(Diagnostic("E070", f"--{name.replace('_', '-')} must be at least 1"), exit_code=2)
    if args.max_faults is not None and args.max_faults < 0:
        raise KonvergeError(Diagnostic("E070", "--max-faults must be 0 or more"), exit_code=2)
    program, scenario, manifests = _load_run(args.files, args.scenario, no_std=args.no_std)
    _no_manifest_objects(manifests)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()] if args.faults is not None else None
    options = dict(faults=faults, deletions=not args.no_deletions,
                   max_faults=DEFAULT_MAX_FAULTS if args.max_faults is None else args.max_faults,
                   max_states=args.max_states or DEFAULT_MAX_STATES, scenario=scenario)
    out = Path(args.out) if args.out else None
    scoped = args.max_nodes is not None or args.max_pods is not None
    with _search_progress() as progress:
        if scoped:
            from .kube.scope import smallest_failing_scope

            tick = progress and (lambda scope, s, t, f: progress(scope.text(), s, t, f))
            report = smallest_failing_scope(program, args.max_nodes, args.max_pods, progress=tick, **options)
        else:
            report = explore(program, progress=progress and (lambda s, t, f: progress("", s, t, f)), **options)
    from .explore import counterexample, counterexample_text, failure_text, path_text, properties_table, space_text
    from .verify import default_out

    for skipped in (report.runs[0].exploration if scoped and report.runs else report).skipped_faults:
        sys.stderr.write(f"note: fault {skipped} is not explored\n")
    module = None
    if scoped:
        from .kube.scope import scoped_module, scopes_table

        sys.stdout.write(scopes_table(report, options["max_states"]))
        failed = report.failed
        if failed is None:
            sys.stdout.write("\n" + properties_table(report.total))
            cut = sum(1 for r in report.runs if r.same_as is None and not r.exploration.exhausted)
            print(f"all properties hold in every scope up to {report.runs[-1].scope.text()}"
                  + (f" ({cut} cut at --max-states before exhausting it)" if cut else ", every one exhausted")
                  + f", in {report.elapsed:.1f}s")
            return 0
        print(f"first failing scope: {failed.scope.text()}")
        program, found = failed.program, failed.exploration
    else:
        found = report
        if found.violation is None:
            sys.stdout.write(properties_table(found))
            print(space_text(found, options["max_states"]) + ", up to "
                  f"{options['max_faults']} fault(s) a path: all properties hold")
            return 0
    out = out or default_out(args.files[0])
    cx = counterexample(program, found.violation, scenario)
    path_file = out.with_suffix(".path") if cx.follow else None
    if scoped:
        module = scoped_module(program, out)
    write_atomically(out, counterexample_text(cx, " ".join(args.files), module, str(path_file) if path_file else None,
                                              " --no-std" if args.no_std else ""))
    if path_file is not None:
        write_atomically(path_file, path_text(cx))
    run = f'{out} --scenario "{cx.scenario.name}"' if scoped else f"{' '.join(args.files)} --scenario {out}"
    follow = (f" --follow {path_file}" if path_file is not None else "") + (" --no-std" if args.no_std else "")
    sys.stdout.write(failure_text(program, cx, f"konverge reconcile {run}{follow}"))
    print(f"counterexample ({space_text(found, options['max_states'])}) written to {out}"
          + (f", its firing path to {path_file}" if path_file is not None else ""))
    return 4


def _search_progress():
    """A live progress line on stderr (only when it is a terminal): yields `progress(what, states,
    transitions, fixed_points)`, or None."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext(None)

    @contextlib.contextmanager
    def display():
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(SpinnerColumn(), TextColumn("exploring{task.fields[what]}: {task.fields[states]:,} states, "
                                                  "{task.fields[transitions]:,} transitions, "
                                                  "{task.fields[fixed]:,} fixed points"),
                      TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("explore", what="", states=0, transitions=0, fixed=0, total=None)
            yield lambda what, s, t, f: bar.update(task, what=f" {what}" if what else "", states=s, transitions=t,
                                                   fixed=f)
    return display()


def _check(args) -> int:
    from .check import check_files
    from .kube.manifests import is_manifest, load_manifests

    files, errors = _expand(args.files)  # with the specs' and the manifests' errors, as reconcile reads them
    programs, manifests = [], None
    try:
        manifests = load_manifests([f for f in files if is_manifest(f)])
    except KonvergeError as e:
        errors.extend(e.diagnostics)
    try:
        programs = check_files([f for f in files if not is_manifest(f)], std=not args.no_std)
    except KonvergeError as e:
        errors.extend(e.diagnostics)
    if errors:
        raise KonvergeError(errors)
    warnings = [w for p in programs for w in p.warnings] + list(manifests.warnings)
    if warnings:
        sys.stderr.write(render(list(dict.fromkeys(warnings))))
    objects = sum(len(p.objects) for p in programs) + len(manifests.objects)
    scenarios = sum(len(p.scenarios) for p in programs)
    print(f"ok: {len(files)} file(s) checked as {len(programs)} program(s): {objects} objects, "
          f"{scenarios} scenarios, {len(set(warnings))} warning(s)")
    return 0


def _fmt(args) -> int:
    from .fmt import format_text
    from .kube.manifests import is_manifest
    from .parse import read_source

    diagnostics: list[Diagnostic] = []
    changed = []
    for name in args.files:
        if is_manifest(name):
            diagnostics.append(Diagnostic("E001", "this is a Kubernetes manifest, not a Konverge file", file=name,
                                          hint="fmt formats .konv files; `konverge check` checks manifests"))
            continue
        try:
            text = read_source(name)
            formatted = format_text(text, name)
        except KonvergeError as e:
            diagnostics.extend(e.diagnostics)
            continue
        if formatted != text:
            changed.append(name)
            if not args.check:
                write_atomically(Path(name), formatted)
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
    from .fixpoint import DEFAULT_BUDGET, reconcile
    from .kube.contract import stream
    from .store import open_store

    program, scenario, manifests = _load_run(args.files, args.scenario, no_std=args.no_std)
    follow = ()
    if args.follow:
        from .explore import read_path

        follow = read_path(args.follow)
    store = open_store(args.data_dir) if args.data_dir else None
    try:
        with _progress() as progress:
            result = reconcile(program, store=store, scenario=scenario, order=args.order, seed=args.seed,
                               naive=args.naive, budget=args.budget or DEFAULT_BUDGET,
                               objects=manifests.declared, progress=progress, follow=follow)
    finally:
        if store is not None:
            store.close()
    if args.output in ("json", "yaml"):
        sys.stdout.writelines(stream(program, result, as_yaml=args.output == "yaml"))
    else:
        sys.stdout.write(_summary(result))
    if not result.converged:
        return 3
    return 4 if result.violations else 0


def _expand(files) -> tuple[list[str], list[Diagnostic]]:
    """The files named, a directory standing for its specs and manifests (as `kubectl apply -f DIR`),
    and an error for each directory that holds none (the other files are still read, so that
    every error is reported at once)."""
    from .kube.manifests import is_manifest

    expanded: list[str] = []
    errors: list[Diagnostic] = []
    for name in files:
        path = Path(name)
        if path.is_dir():
            inside = sorted(str(f) for f in path.iterdir() if f.suffix == ".konv" or is_manifest(f))
            if not inside:
                errors.append(Diagnostic("E001", "this directory holds no .konv, .yaml, .yml or .json file",
                                         file=name, hint="name the files to read, or a directory that holds specs "
                                                         "or manifests"))
            expanded.extend(inside)
        else:
            expanded.append(name)
    return expanded, errors


def _load_run(files, scenario_name: str | None, *, no_std: bool = False):
    """The program, scenario and Kubernetes manifests of a run: `.konv` specs and `.yaml`/`.yml`/`.json`
    manifests mixed freely (a directory stands for its files of those kinds). Manifest
    warnings are printed here, like diagnostics."""
    from .check import load_program
    from .kube.manifests import is_manifest, load_manifests

    expanded, errors = _expand(files)  # with the specs' and the manifests' errors, as a compiler would
    specs = [f for f in expanded if not is_manifest(f)]
    if scenario_name and Path(scenario_name).is_file():
        specs.append(scenario_name)
    try:
        manifests = load_manifests([f for f in expanded if is_manifest(f)])
    except KonvergeError as e:
        errors.extend(e.diagnostics)
    try:
        program = load_program(specs, std=not no_std)
    except KonvergeError as e:
        errors.extend(e.diagnostics)
    if errors:
        raise KonvergeError(errors)
    if manifests.warnings:
        sys.stderr.write(render(list(manifests.warnings)))
    scenario = None
    if scenario_name:
        if Path(scenario_name).is_file():
            from .parse import parse_file

            declared = [d.name for d in parse_file(scenario_name).decls if hasattr(d, "items")]
            if not declared:
                raise KonvergeError(Diagnostic("E060", "this file declares no scenario", file=scenario_name))
            scenario_name = declared[0]
        scenario = program.scenario(scenario_name, ", ".join(files))
    return program, scenario, manifests


def _progress():
    """A live progress line on stderr for long runs (only when stderr is a terminal): yields the
    `progress(steps, clock)` callback for reconcile, or None."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext(None)

    @contextlib.contextmanager
    def display():
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        from .values import format_duration

        with Progress(SpinnerColumn(), TextColumn("reconciling: {task.fields[steps]} steps, "
                                                  "virtual clock {task.fields[clock]}"),
                      TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("reconcile", steps=0, clock="0s", total=None)
            yield lambda steps, clock: bar.update(task, steps=steps, clock=format_duration(clock))
    return display()


def _summary_table(result) -> str:
    """kubectl-like: per kind, how many objects and, for pods and nodes, how they are doing."""
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table

    from .kube.tables import node_status, pod_status

    counts: dict[str, int] = {}
    status: dict[str, dict[str, int]] = {}
    for o in result.objects:
        counts[o["kind"]] = counts.get(o["kind"], 0) + 1
        if o["kind"] == "Pod":
            word = pod_status(o) + (" and ready" if o.get("ready") else "")
        elif o["kind"] == "Node":
            word = node_status(o)
        else:
            continue
        by_word = status.setdefault(o["kind"], {})
        by_word[word] = by_word.get(word, 0) + 1
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("KIND")
    table.add_column("COUNT", justify="right")
    table.add_column("STATUS")
    for kind, n in sorted(counts.items()):
        words = ", ".join(f"{m} {w}" for w, m in sorted(status.get(kind, {}).items()))
        table.add_row(kind, str(n), words)
    out = io.StringIO()
    Console(file=out, width=200, color_system=None, force_terminal=False, highlight=False).print(table)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"


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
    lines.append(_summary_table(result).rstrip("\n"))
    writes = sum(1 for w in result.trace if w.verb != "refused")
    refused = [w for w in result.trace if w.verb == "refused"]
    lines.append(f"{writes} writes, {len(refused)} refused by the API server")
    for w in refused[:10]:
        lines.append(f"  refused: {w.actor}/{w.rule} {w.kind.lower()} {w.name}: {w.message}")
    for v in result.violations:
        lines.append(f"violated: {v}")
    return "\n".join(lines) + "\n"


def intermixed(p: argparse.ArgumentParser) -> None:
    """Let options come after the spec files (`route web specs/demo.konv --from worker-2`, or
    before them): argparse parses a subcommand with `parse_known_args`, which stops taking
    positionals at the first option."""
    plain = p.parse_known_args

    def parse(args=None, namespace=None):
        p.parse_known_args = plain  # the intermixed parse calls it, twice
        try:
            return p.parse_known_intermixed_args(args, namespace)
        finally:
            p.parse_known_args = parse

    p.parse_known_args = parse


def no_std_option(p: argparse.ArgumentParser) -> None:
    """`--no-std`, for every command that loads specs."""
    p.add_argument("--no-std", action="store_true", help="do not load the standard control plane in rules/")


def _run_options(p: argparse.ArgumentParser) -> None:
    """Where `get` and `describe` find the objects: a reconcile of SPECs in memory (with its
    options, given anywhere among the SPECs), or a store's data directory."""
    intermixed(p)
    p.add_argument("--data-dir", metavar="DIR", help="read the store's data directory (read-only) instead")
    p.add_argument("--spec", action="append", default=[], metavar="FILE",
                   help="with --data-dir: spec files declaring kinds beyond the standard ones (repeatable)")
    p.add_argument("--scenario", metavar="NAME|FILE", help="play a scenario before showing")
    p.add_argument("--order", choices=["fixed", "random"], default="fixed", help="rule firing order")
    p.add_argument("--seed", type=int, default=0, help="seed for --order random")
    no_std_option(p)


def _target(args) -> tuple[str, str | None, list[str]]:
    """`KIND [NAME] SPEC…` or `KIND/NAME SPEC…`: (kind, name or None, the SPECs)."""
    from .kube.tables import split_ref

    kind, name = split_ref(args.kind)
    rest = list(args.name)
    if name is None and rest and not _is_spec(rest[0]):
        name = rest.pop(0)
    stray = [x for x in rest if not _is_spec(x)]
    if stray:
        raise KonvergeError(Diagnostic("E203", f"`{stray[0]}` is neither a spec nor a manifest",
                                       hint="specs end in .konv, manifests in .yaml, .yml or .json; give at most "
                                            "one NAME"),
                            exit_code=2)
    return kind, name, rest


def _view(args, what: str, before_run: Callable | None = None):
    """The objects to show, from --data-dir or from a reconcile of the SPECs in memory:
    (program, kind, name or None, objects, trace or None, virtual clock or None).
    `before_run(program, kind)` checks the request against the program before any run."""
    kind, name, rest = _target(args)
    if args.data_dir:
        if rest:
            raise KonvergeError(Diagnostic("E203", f"{what} reads either --data-dir or SPEC files, not both"),
                                exit_code=2)
        from .show import stored_objects

        program, objects = stored_objects(args.data_dir, args.spec)
        if before_run is not None:
            before_run(program, kind)
        return program, kind, name, objects, *_stored_trace(args.data_dir)
    if not rest:
        raise KonvergeError(Diagnostic("E203", f"{what} needs SPEC files to reconcile, or --data-dir DIR",
                                       hint=f"e.g. konverge {what} pods specs/demo.konv"), exit_code=2)
    from .fixpoint import reconcile

    program, scenario, manifests = _load_run(rest, args.scenario, no_std=args.no_std)
    if before_run is not None:
        before_run(program, kind)
    with _progress() as progress:
        result = reconcile(program, scenario=scenario, order=args.order, seed=args.seed,
                           objects=manifests.declared, progress=progress)
    if not result.converged:
        sys.stderr.write(f"warning: the run did not converge ({result.reason}); this is its state after "
                         f"{result.steps} steps\n")
    return program, kind, name, list(result.objects), result.trace, result.clock


def _is_spec(arg: str) -> bool:
    from .kube.manifests import is_manifest

    return arg.endswith(".konv") or is_manifest(arg) or Path(arg).is_dir()


def _stored_trace(data_dir: str):
    """The write trace a reconcile persisted in its data directory and its final virtual clock,
    if it did: (trace or None, clock or None)."""
    try:
        from .explain import read_trace
    except ImportError:
        return None, None
    try:
        trace, clock = read_trace(data_dir)
    except KonvergeError:
        return None, None
    return (trace, clock) if trace else (None, None)


def _get(args) -> int:
    from .kube.labels import kubectl_selector
    from .kube.tables import get_many, label_selector, refuse_name_with_selector, select

    if args.show_labels and args.output not in (None, "wide"):  # kubectl's GetOptions.Validate
        raise KonvergeError(Diagnostic("E203", f"--show-labels option cannot be used with {args.output} printer",
                                       hint="--show-labels adds a column to a table: leave out -o, or use -o wide"),
                            exit_code=2)
    text = kubectl_selector(args.selector)
    refuse_name_with_selector(_target(args)[1], text)  # kubectl's builder refuses it before anything is read
    selector = []

    def request(program, kinds: str) -> None:
        """The API server's answer to a bad selector, before the run."""
        with located(_view_source(args)):
            selector.extend(label_selector(program, kinds, text))

    program, kinds, name, objects, trace, clock = _view(args, "get", request)
    selections, ns = [], None
    for kind in dict.fromkeys(k for k in kinds.split(",") if k):  # `get deploy,rs`: several kinds
        with located(_view_source(args)):
            info, chosen, ns = select(program, objects, kind, name, namespace=args.namespace,
                                      all_namespaces=args.all_namespaces, selector=tuple(selector))
        selections.append((info, chosen))
    if not selections:
        raise KonvergeError(Diagnostic("E202", f"`{kinds}` names no kind", file=_view_source(args),
                                       hint="e.g. konverge get pods"), exit_code=2)
    label_columns = tuple(key for keys in args.label_columns for key in keys.split(","))
    sys.stdout.write(get_many(program, selections, objects, single=name is not None, ns=ns, output=args.output,
                              clock=clock, trace=trace, label_columns=label_columns,
                              show_labels=args.show_labels))
    return 0


def _describe(args) -> int:
    from .kube.tables import describe, select

    program, kind, name, objects, trace, _clock = _view(args, "describe")
    if name is None:
        raise KonvergeError(Diagnostic("E203", "describe needs an object: KIND/NAME or KIND NAME",
                                       hint="e.g. konverge describe deployment/web specs/demo.konv"), exit_code=2)
    with located(_view_source(args)):
        info, chosen, _ = select(program, objects, kind, name, namespace=args.namespace)
    sys.stdout.write(describe(program, info, chosen[0], objects, trace))
    return 0


def _view_source(args) -> str:
    """What `get` or `describe` looked at, for its errors: the data directory or the SPECs."""
    return args.data_dir or ", ".join(x for x in args.name if _is_spec(x))


def run() -> None:
    """The console script: main(), then leave without tearing the heap down.

    A large reconcile leaves millions of objects, which Python would free one by one and
    collect at exit: seconds of work, for a process that is ending anyway. This skips whatever
    Python does at exit, so it rests on what konverge does itself: the store has fsynced every
    write before its call returned, files are written whole before main returns, and nothing
    registers an atexit handler. Only the output streams are left to flush. Under a profiler,
    a tracer or coverage, which write their data at exit, Python exits as usual.
    """
    code = main(exiting=True)
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # closed by the caller (`>&-`)
            continue
        try:
            stream.flush()
        except BrokenPipeError:
            pass  # the reader went away (`| head`): nothing more can be said to it
        except (OSError, ValueError) as e:
            if stream is sys.stdout and sys.stderr is not None:
                try:
                    sys.stderr.write(f"konverge: cannot write the output: {getattr(e, 'strerror', None) or e}\n")
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
            code = code or 1
    os._exit(code)


if __name__ == "__main__":
    run()
