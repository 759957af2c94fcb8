"""Every link to "the lines of this request" opens that request's lines and no other's.

Ids that are prefixes of others (``abc-1`` and ``abc-10``; mlscope's own ``<random>-1`` and ``-1a``...)
are shipped through the real handler to the test receiver; each link's LogQL is answered by the receiver's
LogQL subset (``support.logql_subset``: Loki's documented semantics, no Loki runs here). The reference is
what was logged: the set of lines each id was given.
"""
from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from mlscope import ids
from mlscope.catalog.logs import LOG_APP, request_id_filter, request_lines
from mlscope.dashboards import check as dashcheck
from support.dashboards import datasource_links, shipped_logql
from support.loki_receiver import LokiReceiver

GRAFANA_VALUE = "$${__value.raw}"  # the datasource links' placeholder, `$$`-escaped for provisioning
VARIABLES = {"model": ".+", "model_version": ".+", "env": ".*"}


def ship(make_handler, receiver: LokiReceiver, metadata: bool) -> Counter[str]:
    """Lines for 300 of mlscope's own ids and for abc-1, abc-10, abc-11, xabc-1; how many each got."""
    handler, logger, _ = make_handler(structured_metadata=("request_id",) if metadata else (),
                                      batch_lines=2000)
    ids.reseed_after_fork()  # a fresh prefix, counting from 1, as in a service that just started
    request_ids = [ids.new_request_id() for _ in range(300)] + ["abc-1", "abc-10", "abc-11", "xabc-1"]
    logged: Counter[str] = Counter()
    for n, request_id in enumerate(request_ids):
        for _ in range(1 + n % 3):
            logger.info("step", extra={"model": "churn", "model_version": "1", "request_id": request_id})
            logged[request_id] += 1
    logger.info("no request id here", extra={"model": "churn", "model_version": "1"})
    assert handler.drain(10) and receiver.errors == []
    return logged


def request_id_queries(request_id: str) -> list[tuple[str, str]]:
    """Every shipped query that selects a request's lines, with ``request_id`` filled in as Grafana would."""
    found = []
    for where, expr in shipped_logql():
        if GRAFANA_VALUE in expr and "request_id=" in expr:
            found.append((where, expr.replace(GRAFANA_VALUE, request_id)))
        elif "$request_id" in expr:
            found.append((where, dashcheck.substitute(expr, {**VARIABLES, "request_id": request_id})))
    return found


def ids_of(lines: list) -> Counter[str]:
    return Counter(json.loads(entry.line)["request_id"] for entry in lines)


@pytest.mark.parametrize("metadata", [False, True], ids=["line-only", "structured-metadata"])
def test_every_request_id_link_selects_exactly_its_request(make_handler, receiver: LokiReceiver,
                                                           metadata: bool) -> None:
    logged = ship(make_handler, receiver, metadata)
    mine = next(iter(logged))  # <random>-1: a prefix of -10 ... -1f and -100 ... -12c
    queries = request_id_queries(mine) + [("catalog.request_lines", request_lines(mine))]
    assert {w.split()[0] for w, _ in queries} >= {"mlscope-logs.json", "datasource", "catalog.request_lines"}
    assert len(queries) >= 4  # dashboard search, exemplar link, derived field, the catalog's helper
    for request_id in (mine, "abc-1", "abc-10"):
        for where, expr in request_id_queries(request_id):
            assert ids_of(receiver.select(expr)) == Counter({request_id: logged[request_id]}), (where, expr)
    substring = receiver.select(f'{{app="{LOG_APP}"}} |= "{mine}"')  # what the links did before
    assert len(ids_of(substring)) == 62 and mine in ids_of(substring)  # issue 18 saw 62 requests too
    if metadata:  # the structured-metadata matcher, no parser, selects the same lines
        assert ids_of(receiver.select(f'{{app="{LOG_APP}"}} | request_id="abc-1"')) == Counter({"abc-1": 1})


def test_derived_field_captures_the_whole_id_and_links_with_the_catalogs_filter() -> None:
    links = [link for link in datasource_links() if link.get("name", "request_id") == "request_id"]
    assert len(links) >= 2
    for link in links:
        assert link["url"] == f'{{app="{LOG_APP}"}} {request_id_filter(GRAFANA_VALUE)}', link
        if "matcherRegex" in link:  # Grafana runs it over the line: the id, whole
            line = '{"ts":"x","request_id":"abc-10","data_batch_id":null}'
            assert re.search(link["matcherRegex"], line).group(1) == "abc-10"


@pytest.mark.parametrize("field", ["run_id", "data_batch_id"])
def test_run_and_batch_links_select_exactly_their_run_or_batch(make_handler, receiver: LokiReceiver,
                                                              field: str) -> None:
    """The derived fields of pipeline lines: a run's (or a batch's) id, whole, opens its lines and no other's."""
    (link,) = [link for link in datasource_links() if link.get("name") == field]
    handler, logger, _ = make_handler(batch_lines=2000)
    values = ["r-1", "r-10", "r-11", "xr-1"]
    for n, value in enumerate(values):
        for _ in range(1 + n):
            logger.info("pipeline_step_end", extra={"model": "churn", "model_version": "1", field: value,
                                                     "event": "pipeline_step_end"})
    assert handler.drain(10) and receiver.errors == []
    captured = [m.group(1) for e in receiver.lines if (m := re.search(link["matcherRegex"], e.line))]
    assert captured == [v for n, v in enumerate(values) for _ in range(1 + n)]
    for n, value in enumerate(values):
        selected = receiver.select(link["url"].replace(GRAFANA_VALUE, value))
        assert [json.loads(e.line)[field] for e in selected] == [value] * (1 + n), value


def test_no_shipped_query_finds_a_request_by_substring() -> None:
    queries = shipped_logql()
    assert len(queries) > 10
    for where, expr in queries:
        for match in re.finditer(r'(\|=|\|~)\s*("(?:[^"\\]|\\.)*"|`[^`]*`)', expr):
            assert "request_id" not in match.group(2) and "__value" not in match.group(2), (where, expr)
    assert request_id_filter('a"b') == '| json | request_id="a\\"b"'  # a quote in an id stays inside the string


def tempo_to_loki_query() -> str:
    """The Tempo datasource's "logs for this span" query (``$$`` unescaped as Grafana reads the file)."""
    import yaml

    from support.dashboards import DATASOURCES

    (tempo,) = [d for d in yaml.safe_load(DATASOURCES.read_text())["datasources"] if d["uid"] == "tempo"]
    links = tempo["jsonData"]["tracesToLogsV2"]
    assert links["datasourceUid"] == "loki" and links["customQuery"] is True
    return str(links["query"]).replace("$$", "$")


def test_a_spans_logs_are_its_traces_lines_and_its_requests(make_handler, receiver: LokiReceiver) -> None:
    """Trace -> logs opens the lines logged in the trace and every line of the span's request id (some are
    logged outside the span: no trace id), nothing else; without the attribute, the trace's lines only."""
    from mlscope.tracing import REQUEST_ID as SPAN_REQUEST_ID

    handler, logger, _ = make_handler(batch_lines=2000)
    trace, other = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7a3ce929d0e0e4736"
    lines = [("abc-1", trace), ("abc-1", trace), ("abc-1", None), ("abc-10", trace), ("abc-11", other),
             ("abc-10", None), ("xabc-1", None), (None, trace), (None, None)]
    for request_id, trace_id in lines:
        extra = {"model": "churn", "model_version": "1", "request_id": request_id}
        if trace_id:
            extra.update(trace_id=trace_id, span_id="00f067aa0ba902b7")
        logger.info("step", extra=extra)
    assert handler.drain(10) and receiver.errors == []
    query = tempo_to_loki_query()
    assert "${__trace.traceId}" in query and f'${{__span.tags["{SPAN_REQUEST_ID}"]}}' in query

    def selected(request_attribute: str) -> Counter[tuple[str, str]]:
        expr = query.replace("${__trace.traceId}", trace).replace(
            f'${{__span.tags["{SPAN_REQUEST_ID}"]}}', request_attribute)
        return Counter((str((f := json.loads(e.line)).get("request_id")), str(f.get("trace_id")))
                       for e in receiver.select(expr))

    def expected(*rows: tuple[str | None, str | None]) -> Counter[tuple[str, str]]:
        return Counter((str(r), str(t)) for r, t in rows)

    assert selected("abc-1") == expected(("abc-1", trace), ("abc-1", trace), ("abc-1", None), ("abc-10", trace))
    assert selected("") == expected(("abc-1", trace), ("abc-1", trace), ("abc-10", trace))  # no attribute
    derived = next(link for link in datasource_links("tempo") if "matcherRegex" in link)
    assert [m.group(1) for e in receiver.lines if (m := re.search(derived["matcherRegex"], e.line))] == [
        t for _, t in lines if t]  # every line's trace id, whole, opens its trace
    assert derived["url"] == GRAFANA_VALUE
