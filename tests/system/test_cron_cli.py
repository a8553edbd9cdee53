"""System tests of `weft cron` through the real binary: output format, -n,
--tz, --from, exit codes, and a comparison with Debian's croniter away from
DST changes (where croniter 1.3.5 and cronie's rule part ways)."""
import datetime as dt
import re
import zoneinfo

import pytest

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def lines(proc):
    return proc.stdout.splitlines()


def test_default_count_and_format(weft):
    p = weft("cron", "0 3 * * *", "--from", "2026-01-01T00:00:00Z")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    out = lines(p)
    assert out == [f"2026-01-0{d}T03:00:00Z" for d in range(1, 6)]
    assert all(ISO_Z.match(x) for x in out)
    assert p.stdout.endswith("\n")


@pytest.mark.parametrize("n", [1, 3, 17])
def test_count(weft, n):
    p = weft("cron", "*/10 * * * *", "--from", "2026-01-01T00:00:00Z",
             "-n", n)
    assert p.returncode == 0, p.stderr
    out = lines(p)
    assert len(out) == n
    want = [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
            + dt.timedelta(minutes=10 * (i + 1)) for i in range(n)]
    assert out == [w.strftime("%Y-%m-%dT%H:%M:%SZ") for w in want]


def test_options_in_any_order(weft):
    a = weft("cron", "-n", "2", "--tz", "Asia/Kolkata", "0 9 * * *",
             "--from", "2026-01-01")
    b = weft("cron", "0 9 * * *", "--from=2026-01-01", "--tz=Asia/Kolkata",
             "-n2")
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert lines(a) == lines(b) == ["2026-01-01T03:30:00Z",
                                    "2026-01-02T03:30:00Z"]


def test_tz_and_spring_gap(weft):
    # The example of `weft cron --help`: 02:30 does not exist in Berlin on
    # 2021-03-28; the job runs at the end of the gap, 03:00 CEST.
    p = weft("cron", "30 2 * * *", "--tz", "Europe/Berlin", "--from",
             "2021-03-27")
    assert p.returncode == 0, p.stderr
    assert lines(p) == ["2021-03-27T01:30:00Z", "2021-03-28T01:00:00Z",
                        "2021-03-29T00:30:00Z", "2021-03-30T00:30:00Z",
                        "2021-03-31T00:30:00Z"]


def test_fall_back(weft):
    fixed = weft("cron", "30 2 * * *", "--tz", "Europe/Berlin", "--from",
                 "2021-10-30T12:00", "-n", "2")
    assert lines(fixed) == ["2021-10-31T00:30:00Z", "2021-11-01T01:30:00Z"]
    star = weft("cron", "*/30 2 * * *", "--tz", "Europe/Berlin", "--from",
                "2021-10-31T01:00", "-n", "5")
    assert lines(star) == ["2021-10-31T00:00:00Z", "2021-10-31T00:30:00Z",
                           "2021-10-31T01:00:00Z", "2021-10-31T01:30:00Z",
                           "2021-11-01T01:00:00Z"]


def test_from_is_read_in_zone_unless_it_has_an_offset(weft):
    local = weft("cron", "0 * * * *", "--tz", "America/New_York", "--from",
                 "2026-07-01T10:30", "-n", "1")
    assert lines(local) == ["2026-07-01T15:00:00Z"]
    utc = weft("cron", "0 * * * *", "--tz", "America/New_York", "--from",
               "2026-07-01T10:30:00Z", "-n", "1")
    assert lines(utc) == ["2026-07-01T11:00:00Z"]
    off = weft("cron", "0 * * * *", "--from", "2026-07-01T10:30:00+05:30",
               "-n", "1")
    assert lines(off) == ["2026-07-01T06:00:00Z"]


def test_from_defaults_to_now(weft):
    before = dt.datetime.now(dt.timezone.utc)
    p = weft("cron", "* * * * *", "-n", "2")
    assert p.returncode == 0, p.stderr
    got = [dt.datetime.strptime(x, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=dt.timezone.utc) for x in lines(p)]
    assert before < got[0] <= before + dt.timedelta(minutes=1, seconds=5)
    assert got[1] - got[0] == dt.timedelta(minutes=1)


def test_every_counts_from_the_start(weft):
    p = weft("cron", "@every 1h30m", "--from", "2026-01-01T00:00:10Z",
             "-n", "3")
    assert lines(p) == ["2026-01-01T01:30:10Z", "2026-01-01T03:00:10Z",
                        "2026-01-01T04:30:10Z"]


def test_macros(weft):
    p = weft("cron", "@weekly", "--from", "2026-01-01", "-n", "2")
    assert lines(p) == ["2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"]
    p = weft("cron", "@yearly", "--from", "2026-01-01", "-n", "2")
    assert lines(p) == ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]


def test_never_fires(weft):
    p = weft("cron", "0 0 30 2 *", "--from", "2026-01-01")
    assert p.returncode == 0
    assert p.stdout == ""
    assert "never fires" in p.stderr


def test_leap_day_across_2100(weft):
    p = weft("cron", "0 12 29 2 *", "--from", "2096-03-01", "-n", "2")
    assert lines(p) == ["2104-02-29T12:00:00Z", "2108-02-29T12:00:00Z"]


def test_help(weft):
    p = weft("cron", "--help")
    assert p.returncode == 0
    assert p.stdout.startswith("usage: weft cron EXPR")
    assert weft("help", "cron").stdout == p.stdout


@pytest.mark.parametrize("args", [
    [],                                          # no EXPR
    ["0 3 * * *", "-n", "0"],
    ["0 3 * * *", "-n", "-1"],
    ["0 3 * * *", "-n", "x"],
    ["0 3 * * *", "-n", "5x"],
    ["0 3 * * *", "-n", "99999999999999999999"],
    ["0 3 * * *", "-n"],                         # missing value
    ["0 3 * * *", "--tz"],
    ["0 3 * * *", "--bogus"],
    ["0 3 * * *", "-x"],
    ["0", "3", "*", "*", "*"],                   # unquoted expression
    ["0 3 * * *", "--from", "yesterday"],
    ["0 3 * * *", "--from", "2026-02-30"],
    ["0 3 * * *", "--from", "2026-01-01T25:00"],
])
def test_usage_errors_exit_2(weft, args):
    p = weft("cron", *args)
    assert p.returncode == 2, (args, p.stdout, p.stderr)
    assert p.stdout == ""
    assert p.stderr.startswith("weft: error: ")
    assert "weft cron --help" in p.stderr


@pytest.mark.parametrize("expr,message", [
    ("0 0 32 * *", "day-of-month field '32': value 32 out of range 1-31"),
    ("60 * * * *", "minute field '60'"),
    ("0 0 L * *", "'L' (last day) is not supported"),
    ("0 0 * * 6#3", "'#' (nth weekday of the month) is not supported"),
    ("0 0 0 * * *", "there is no seconds field"),
    ("* * * *", "expected 5"),
    ("@reboot", "@reboot is not supported"),
    ("@every soon", "is not a duration"),
    ("", "empty schedule"),
])
def test_bad_expression_exit_2(weft, expr, message):
    # The expression is the argument: one weft cannot read is a malformed
    # argument, a usage error (in a DAG file it makes the file invalid).
    p = weft("cron", expr, "--from", "2026-01-01")
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert lines[0].startswith("weft: error: ")
    assert message in lines[0]
    assert lines[1:] == ["Run 'weft cron --help' for usage."]


@pytest.mark.parametrize("zone,message", [
    ("Mars/Olympus_Mons", "unknown time zone 'Mars/Olympus_Mons'"),
    ("../../etc/passwd", "invalid time zone name"),
    ("/etc/localtime", "invalid time zone name"),
])
def test_bad_zone_exit_2(weft, zone, message):
    p = weft("cron", "0 3 * * *", "--tz", zone)
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.startswith("weft: error: ")
    assert message in p.stderr


# Comparison with croniter ----------------------------------------------------

# Expressions on which cronie and croniter 1.3.5 agree: where both day
# fields are restricted croniter ORs them as cronie does, but it also ORs
# "*/2"-style fields that cronie treats as unrestricted, so those stay out.
EXPRESSIONS = [
    "* * * * *", "*/7 * * * *", "5/15 * * * *", "0 * * * *",
    "17 */3 * * *", "0 9-17 * * mon-fri", "*/20 8-18/2 * * 1-5",
    "30 4 1,15 * *", "0 0 1 * *", "0 0 31 * *", "15 10 * * sun",
    "0 12 13 * 5", "0 0 1 jan,apr,jul,oct *", "45 23 * * 6,0",
    "59 23 28-31 * *", "0 0 1-7 * mon", "10,20,30 1 * * *",
    "0 6 * feb-apr *", "@daily", "@hourly", "@weekly", "@monthly",
]

# (zone, start): starts whose first fire times lie far from DST changes.
STARTS = [
    ("UTC", dt.datetime(2026, 1, 10, 8, 7, 30)),
    ("UTC", dt.datetime(2028, 2, 27, 23, 59, 59)),
    ("Asia/Kolkata", dt.datetime(2026, 5, 2, 13, 0, 5)),
    ("Europe/Berlin", dt.datetime(2026, 6, 10, 21, 30, 0)),
    ("America/New_York", dt.datetime(2026, 1, 12, 3, 3, 3)),
    ("Australia/Sydney", dt.datetime(2026, 7, 1, 0, 0, 1)),
]


def croniter_times(croniter, expr, zone, start, n):
    tz = zoneinfo.ZoneInfo(zone)
    it = croniter.croniter(expr, start.replace(tzinfo=tz))
    out = []
    for _ in range(n):
        t = it.get_next(dt.datetime).astimezone(dt.timezone.utc)
        out.append(t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return out


def transitions_between(zone, a, b):
    """True if the UTC offset of ZONE changes between instants a and b."""
    tz = zoneinfo.ZoneInfo(zone)
    t, step = a, dt.timedelta(hours=1)
    off = a.astimezone(tz).utcoffset()
    while t <= b:
        if t.astimezone(tz).utcoffset() != off:
            return True
        t += step
    return False


@pytest.mark.parametrize("zone,start", STARTS,
                         ids=[f"{z}-{s:%Y%m%d}" for z, s in STARTS])
def test_agrees_with_croniter(weft, zone, start):
    croniter = pytest.importorskip(
        "croniter", reason="Debian's python3-croniter is not installed")
    compared = 0
    for expr in EXPRESSIONS:
        n = 8
        want = croniter_times(croniter, expr, zone, start, n)
        first = start.replace(tzinfo=zoneinfo.ZoneInfo(zone))
        last = dt.datetime.strptime(want[-1], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=dt.timezone.utc)
        if transitions_between(zone, first, last):
            # Keep only the fire times before the first change.
            while want and transitions_between(
                    zone, first, dt.datetime.strptime(
                        want[-1], "%Y-%m-%dT%H:%M:%SZ").replace(
                            tzinfo=dt.timezone.utc)):
                want.pop()
            n = len(want)
            if n == 0:
                continue
        p = weft("cron", expr, "--tz", zone, "--from",
                 start.strftime("%Y-%m-%dT%H:%M:%S"), "-n", n)
        assert p.returncode == 0, (expr, p.stderr)
        assert lines(p) == want, (expr, zone)
        compared += n
    assert compared >= 5 * len(EXPRESSIONS)
