#!/usr/bin/env python3
"""Checks that the Grafana dashboard and the alert rules only query metrics
(and labels) that Daedalus really exports.

Usage: check_metric_names.py DASHBOARD.json RULES.yml [METRICS.txt]

Without a metrics dump it only loads both files and lists the names they
use. With one (a real scrape of /metrics in the Prometheus text format) it
fails for every metric name, selector label or `by (...)` label that the
scrape does not contain. PromQL is not parsed in full: selectors, ranges and
grouping clauses are cut out with patterns, and what remains that is not a
function, keyword or number is taken as a metric name.
"""

import json
import re
import sys

import yaml

# Series Prometheus makes itself for every target, not in /metrics.
PROMETHEUS_MADE = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# Labels Prometheus attaches at scrape time or that every histogram has.
TARGET_LABELS = {"job", "instance", "service", "le"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring",
            "group_left", "group_right", "offset", "bool", "inf", "nan"}
IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SELECTOR = re.compile(r"(?<![\w.:])(" + IDENT + r")?\s*\{([^}]*)\}")
MATCHER_LABEL = re.compile(r"(" + IDENT + r")\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
RANGE = re.compile(r"\[[^\]]*\]")
BARE_NAME = re.compile(r"(?<![\w.:$])(" + IDENT + r")(?![\w:])(?!\s*\()")
SAMPLE = re.compile(r"^(" + IDENT + r")(\{.*\})?\s")
SAMPLE_LABEL = re.compile(r"(" + IDENT + r')="(?:[^"\\]|\\.)*"')


def exported(metrics_text):
    """Metric name -> set of label names, from the samples of a scrape."""
    names = {}
    for line in metrics_text.splitlines():
        m = SAMPLE.match(line)
        if m:
            labels = set(SAMPLE_LABEL.findall(m.group(2) or ""))
            names.setdefault(m.group(1), set()).update(labels)
    return names


def uses(expr):
    """(metric names, {name: matcher labels}, grouping labels) of one query."""
    selectors = {}
    for name, matchers in SELECTOR.findall(expr):
        if name:
            selectors.setdefault(name, set()).update(MATCHER_LABEL.findall(matchers))
    rest = SELECTOR.sub(lambda m: " " + (m.group(1) or "") + " ", expr)
    grouping = set()
    for _, labels in GROUPING.findall(rest):
        grouping.update(l.strip() for l in labels.split(",") if l.strip())
    rest = GROUPING.sub(" ", RANGE.sub(" ", rest))
    names = {n for n in BARE_NAME.findall(rest) if n.lower() not in KEYWORDS}
    return names, selectors, grouping


def dashboard_queries(path):
    with open(path) as f:
        dash = json.load(f)
    found = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    found.append((f"panel '{p.get('title')}'", t["expr"]))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.match(r"\s*label_values\((.*),\s*(" + IDENT + r")\s*\)\s*$", q or "")
        if m:
            found.append((f"variable '{v['name']}'", m.group(1)))
            found.append((f"variable '{v['name']}' label", f"sum by ({m.group(2)}) ({m.group(1)})"))
    if not found:
        raise SystemExit(f"{path}: no queries found")
    return found


def rule_queries(path):
    with open(path) as f:
        rules = yaml.safe_load(f)
    return [(f"alert {r.get('alert') or r.get('record')}", r["expr"])
            for g in rules["groups"] for r in g["rules"]]


def problems(where, expr, names):
    metrics, selectors, grouping = uses(expr)
    out = []
    present = set()
    for n in sorted(metrics):
        if n in PROMETHEUS_MADE:
            present.add(n)
        elif n not in names:
            out.append(f"{where}: metric {n} is not in the scrape")
        else:
            present.add(n)
    available = set(TARGET_LABELS)
    for n in present:
        available |= names.get(n, set())
    for n, labels in selectors.items():
        if n in names:
            for l in sorted(labels - names[n] - TARGET_LABELS):
                out.append(f"{where}: {n} has no label {l} in the scrape")
    if present - PROMETHEUS_MADE and not (metrics - present):
        for l in sorted(grouping - available):
            out.append(f"{where}: grouping by {l}, which none of its metrics has")
    return out


def main(argv):
    if len(argv) not in (3, 4):
        raise SystemExit(__doc__)
    queries = dashboard_queries(argv[1]) + rule_queries(argv[2])
    used = sorted(set().union(*(uses(e)[0] for _, e in queries)))
    print(f"{len(queries)} queries use {len(used)} metric names: {' '.join(used)}")
    if len(argv) == 3:
        return 0
    with open(argv[3]) as f:
        names = exported(f.read())
    if not any(n.startswith("daedalus_") for n in names):
        raise SystemExit(f"{argv[3]}: no daedalus_ samples; is it a scrape of Daedalus?")
    found = list(dict.fromkeys(p for where, e in queries for p in problems(where, e, names)))
    for p in found:
        print(p)
    if found:
        print("(the prometheus crate leaves a labelled family out of a scrape until one "
              "of its series exists: a missing name may mean the service should create "
              "its known series at start, or that the scrape was taken too early)")
        return 1
    print(f"all {len(used)} names and their labels are in {argv[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
