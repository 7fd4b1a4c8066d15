"""RBAC in the API server: every verb × kind × namespace for several roles,
checked against an independent model of what each grant allows."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.api import APIServer, Forbidden, Identity, NotFound, Unauthorized
from engine.check import check_modules
from engine.parse import parse_text
from engine.store import open_store

SPEC = """
record PolicyRule {
  verbs: list<string>
  kinds: list<string>
}
kind Role { rules: list<PolicyRule> = [] }
kind RoleBinding { role: string  roleKind: string = "Role"  subjects: list<string> = [] }
cluster kind ClusterRole { rules: list<PolicyRule> = [] }
cluster kind ClusterRoleBinding { role: string  subjects: list<string> = [] }
cluster kind User { token: string  groups: list<string> = [] }

kind Pod { image: string = "nginx" }
kind Secret { data: string = "" }
cluster kind Node { cpu: int = 1 }
"""

VERBS = ["get", "list", "watch", "create", "update", "delete"]
KINDS = ["Pod", "Secret", "Node"]
CLUSTER_KINDS = {"Node"}
NAMESPACES = ["shop", "dev", "other"]
ALL = None  # list and watch across every namespace

# Who is granted what, as plain data: (scope, namespace, verbs, kinds). A
# "cluster" grant holds everywhere, incl. cluster-scoped kinds; a "namespace"
# grant only on namespaced kinds in that one namespace.
GRANTS = {
    # a namespace reader: Role + RoleBinding in shop
    "alice": [("namespace", "shop", {"get", "list", "watch"}, {"*"})],
    # a cluster-wide pod editor: ClusterRole + ClusterRoleBinding
    "bob": [("cluster", None, {"*"}, {"Pod"})],
    # a ClusterRole bound by a RoleBinding into dev only (through the group "ops")
    "carol": [("namespace", "dev", {"get", "create", "delete"}, {"Secret", "Node"})],
    # bound to nothing
    "dave": [],
}
USERS = {"alice": [], "bob": [], "carol": ["ops"], "dave": []}


def expected(user: str, verb: str, kind: str, namespace: str | None) -> bool:
    for scope, ns, verbs, kinds in GRANTS[user]:
        if not (verb in verbs or "*" in verbs) or not (kind in kinds or "*" in kinds):
            continue
        if scope == "cluster":
            return True
        if kind not in CLUSTER_KINDS and namespace == ns:
            return True
    return False


@pytest.fixture(scope="module")
def program():
    return check_modules([parse_text(SPEC, "rbac.konv")])


def cluster(program) -> APIServer:
    api = APIServer(program, open_store())
    a = api.admin
    for name, groups in USERS.items():
        api.create(a, "user", {"name": name, "token": f"t-{name}", "groups": groups})
    api.create(a, "role", {"name": "reader", "namespace": "shop",
                           "rules": [{"verbs": ["get", "list", "watch"], "kinds": ["*"]}]})
    api.create(a, "rolebinding", {"name": "alice-reads", "namespace": "shop", "role": "reader", "subjects": ["alice"]})
    api.create(a, "clusterrole", {"name": "pod-editor", "rules": [{"verbs": ["*"], "kinds": ["Pod"]}]})
    api.create(a, "clusterrolebinding", {"name": "bob-edits", "role": "pod-editor", "subjects": ["user:bob"]})
    api.create(a, "clusterrole", {"name": "secret-admin",
                                  "rules": [{"verbs": ["get", "create", "delete"], "kinds": ["secret", "nodes"]}]})
    api.create(a, "rolebinding", {"name": "ops-secrets", "namespace": "dev", "role": "secret-admin",
                                  "roleKind": "ClusterRole", "subjects": ["group:ops"]})
    # A Role of the same name in another namespace grants nothing in shop.
    api.create(a, "role", {"name": "reader", "namespace": "other", "rules": [{"verbs": ["*"], "kinds": ["*"]}]})
    for kind in KINDS:
        for ns in [None] if kind in CLUSTER_KINDS else NAMESPACES:
            api.create(a, kind, {"name": "x", "namespace": ns})
    return api


def attempt(api: APIServer, who: Identity, verb: str, kind: str, ns: str | None) -> bool:
    """Do the operation; True if RBAC let it through."""
    try:
        if verb == "get":
            api.get(who, kind, ns, "x")
        elif verb == "list":
            api.list(who, kind, ns)
        elif verb == "watch":
            api.watch(who, kind, api.store.revision + 1, ns)
        elif verb == "create":
            api.create(who, kind, {"name": "y", "namespace": ns})
        elif verb == "update":
            current = api.get(api.admin, kind, ns, "x")
            api.update(who, kind, dict(current, **({"cpu": 2} if kind == "Node" else {"image": "b"}
                                                    if kind == "Pod" else {"data": "b"})))
        elif verb == "delete":
            api.delete(who, kind, ns, "x")
    except Forbidden:
        return False
    return True


def cases():
    for user, verb, kind in itertools.product(GRANTS, VERBS, KINDS):
        if kind in CLUSTER_KINDS:
            spaces = [None]
        elif verb in ("list", "watch"):
            spaces = [*NAMESPACES, ALL]
        else:
            spaces = NAMESPACES
        for ns in spaces:
            yield user, verb, kind, ns


@pytest.mark.parametrize("user, verb, kind, ns", list(cases()))
def test_a_request_is_allowed_exactly_when_a_binding_grants_it(program, user, verb, kind, ns):
    api = cluster(program)
    who = api.authenticate(f"t-{user}")
    assert attempt(api, who, verb, kind, ns) == expected(user, verb, kind, ns)


def test_the_matrix_has_both_outcomes_for_every_user_with_grants():
    for user in ("alice", "bob", "carol"):
        outcomes = {expected(user, v, k, ns) for _, v, k, ns in cases() if _ == user}
        assert outcomes == {True, False}


@pytest.mark.parametrize("verb, kind, ns", [(v, k, ns) for _, v, k, ns in cases() if _ == "dave"])
def test_the_admin_is_always_allowed(program, verb, kind, ns):
    api = cluster(program)
    assert attempt(api, api.admin, verb, kind, ns)


def test_requests_without_a_valid_token_are_unauthorized_once_users_exist(program):
    api = cluster(program)
    for token in (None, "", "t-mallory"):
        with pytest.raises(Unauthorized):
            api.authenticate(token)
    assert api.authenticate("t-carol") == Identity("carol", "user", ("ops",))


def test_without_users_every_token_is_anonymous_and_without_bindings_all_is_allowed(program):
    api = APIServer(program, open_store())
    anon = api.authenticate("anything")
    assert anon.name == "system:anonymous" and api.authenticate(None) == anon
    for kind in KINDS:
        api.create(api.admin, kind, {"name": "x", "namespace": None if kind in CLUSTER_KINDS else "shop"})
    for verb, kind in itertools.product(VERBS, KINDS):
        assert attempt(api, anon, verb, kind, None if kind in CLUSTER_KINDS else "shop")


def test_the_first_binding_turns_deny_by_default_on(program):
    api = APIServer(program, open_store())
    eve = Identity("eve", "user")
    assert api.allows(eve, "create", "pod", "shop")
    api.create(api.admin, "clusterrolebinding", {"name": "b", "role": "nothing", "subjects": ["someone"]})
    assert not api.allows(eve, "create", "pod", "shop")
    with pytest.raises(Forbidden):
        api.create(eve, "pod", {"name": "p", "namespace": "shop"})


def test_a_grant_holds_from_its_binding_to_its_removal_whichever_server_writes_them(program):
    api = cluster(program)
    dave = api.authenticate("t-dave")
    assert not api.allows(dave, "create", "pod", "shop")
    other = APIServer(program, api.store)
    other.create(other.admin, "clusterrolebinding", {"name": "dave-edits", "role": "pod-editor", "subjects": ["dave"]})
    assert api.allows(dave, "create", "pod", "shop")
    api.create(dave, "pod", {"name": "y", "namespace": "shop"})
    api.update(api.admin, "clusterrole", dict(api.get(api.admin, "clusterrole", None, "pod-editor"), rules=[]))
    assert not api.allows(dave, "create", "pod", "shop")
    with pytest.raises(Forbidden):
        api.delete(dave, "pod", "shop", "y")


def test_each_rbac_kind_written_after_other_kinds_changes_the_decisions_at_once(program):
    # Decisions are kept while no RBAC object is written: writes of other kinds in between keep
    # them, and a write of any RBAC kind, by this server, is seen by the very next request.
    api = cluster(program)
    a, dave = api.admin, api.authenticate("t-dave")
    steps = [
        ("role", {"name": "dave-reads", "namespace": "dev", "rules": [{"verbs": ["get"], "kinds": ["Pod"]}]}, False),
        ("rolebinding", {"name": "dave-reads", "namespace": "dev", "role": "dave-reads", "subjects": ["dave"]}, True),
        ("role", {"name": "dave-reads", "namespace": "dev", "rules": []}, False),
        ("clusterrole", {"name": "getter", "rules": [{"verbs": ["get"], "kinds": ["*"]}]}, False),
        ("clusterrolebinding", {"name": "dave-gets", "role": "getter", "subjects": ["dave"]}, True),
        ("clusterrole", {"name": "getter", "rules": []}, False),
    ]
    for n, (kind, obj, allowed) in enumerate(steps):
        assert api.allows(dave, "create", "pod", "dev") is False
        api.create(a, "secret", {"name": f"s{n}", "namespace": "dev"})  # another kind: decisions kept
        api.create(a, "pod", {"name": f"p{n}", "namespace": "dev"})
        try:
            current = api.get(a, kind, obj.get("namespace"), obj["name"])
        except NotFound:
            api.create(a, kind, obj)
        else:
            api.update(a, kind, {**current, **obj})
        assert api.allows(dave, "get", "pod", "dev") is allowed, (kind, obj)
    # A delete is a write of its kind too.
    api.update(a, "clusterrole", {**api.get(a, "clusterrole", None, "getter"), **steps[3][1]})
    assert api.allows(dave, "get", "pod", "dev") is True
    api.create(a, "secret", {"name": "s-last", "namespace": "dev"})
    api.delete(a, "clusterrolebinding", None, "dave-gets")
    assert api.allows(dave, "get", "pod", "dev") is False
    api.create(a, "user", {"name": "erin", "token": "t-erin"})
    assert api.authenticate("t-erin").name == "erin"


def test_controllers_are_subjects_by_name(program):
    api = cluster(program)
    scheduler = api.controller("scheduler")
    assert not api.allows(scheduler, "update", "pod", "shop")
    api.create(api.admin, "clusterrolebinding", {"name": "sched", "role": "pod-editor", "subjects": ["scheduler"]})
    assert api.allows(scheduler, "update", "pod", "shop")
    # `user:` subjects do not match a controller of the same name.
    api.create(api.admin, "clusterrolebinding", {"name": "bob-as-ctl", "role": "pod-editor", "subjects": ["user:gc"]})
    assert not api.allows(api.controller("gc"), "update", "pod", "shop")


def test_a_program_without_binding_kinds_has_no_rbac():
    program = check_modules([parse_text("kind Pod { image: string = \"x\" }", "plain.konv")])
    api = APIServer(program, open_store())
    assert not api.rbac_enabled
    assert api.allows(Identity("anyone", "user"), "delete", "pod", "shop")


# ---- a model of grants, against random roles and bindings ---------------------------------

rules_st = st.lists(st.fixed_dictionaries({
    "verbs": st.lists(st.sampled_from([*VERBS, "*"]), min_size=1, max_size=3, unique=True),
    "kinds": st.lists(st.sampled_from([*KINDS, "*"]), min_size=1, max_size=2, unique=True),
}), max_size=2)
binding_st = st.tuples(
    st.sampled_from(["crb", "rb-role", "rb-clusterrole"]),
    st.sampled_from(NAMESPACES),
    rules_st,
    st.sampled_from(["u", "v"]),
)


@given(st.lists(binding_st, min_size=1, max_size=4))
def test_random_bindings_grant_what_a_plain_model_says(program, bindings):
    api = APIServer(program, open_store())
    grants = []
    for i, (how, ns, rules, subject) in enumerate(bindings):
        verbs_kinds = [(set(r["verbs"]), set(r["kinds"])) for r in rules]
        if how == "crb":
            api.create(api.admin, "clusterrole", {"name": f"r{i}", "rules": rules})
            api.create(api.admin, "clusterrolebinding", {"name": f"b{i}", "role": f"r{i}", "subjects": [subject]})
            grants += [(subject, "cluster", None, v, k) for v, k in verbs_kinds]
        else:
            role_kind = "Role" if how == "rb-role" else "ClusterRole"
            if role_kind == "Role":
                api.create(api.admin, "role", {"name": f"r{i}", "namespace": ns, "rules": rules})
            else:
                api.create(api.admin, "clusterrole", {"name": f"r{i}", "rules": rules})
            api.create(api.admin, "rolebinding", {"name": f"b{i}", "namespace": ns, "role": f"r{i}",
                                                  "roleKind": role_kind, "subjects": [subject]})
            grants += [(subject, "namespace", ns, v, k) for v, k in verbs_kinds]

    def model(user, verb, kind, ns):
        return any(s == user and (verb in v or "*" in v) and (kind in k or "*" in k)
                   and (scope == "cluster" or (kind not in CLUSTER_KINDS and ns == gns))
                   for s, scope, gns, v, k in grants)

    for user, verb, kind, ns in itertools.product(["u", "v"], VERBS, KINDS, [*NAMESPACES, None]):
        assert api.allows(Identity(user, "user"), verb, kind, ns) == model(user, verb, kind, ns)
