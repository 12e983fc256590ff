#!/usr/bin/env python3
"""Fixtures of the loss-audit benchmark (bench/audit/run), deterministic:

gen.py fixtures ROWS ACCOUNTS DIR
    DIR/catalog.jsonl  one Twilio Recording JSON per line (our extension
                       "formats": ["mp3"]: one object per recording), calls
                       of 1 s, one every 31 s from 2025-01-01 UTC (no
                       incident covers them), over ACCOUNTS accounts;
    DIR/keys           the storage keys of 99 % of them, {account}/{sid}.mp3;
    DIR/missing        the sids of the other 1 % (a seeded random sample),
                       sorted: what the audit must report, and only that;
    DIR/missing-keys   their keys (uploaded later, for an audit with nothing
                       to report).

gen.py scan DB PAGE
    Reads the catalog alone as the audit does: every column of every
    recording, in storage-key order (account_sid, sid), PAGE rows a query by
    keyset pagination. Prints one JSON object (rows, pages, seconds).
"""
import datetime, json, os, random, sqlite3, sys, time


def fixtures(rows, accounts, out):
    missing = set(random.Random(20170509).sample(range(rows), rows // 100))
    t0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    with open(os.path.join(out, "catalog.jsonl"), "w") as cat, \
            open(os.path.join(out, "keys"), "w") as keys:
        for i in range(rows):
            sid, account = "RE%032x" % i, "AC%032x" % (i % accounts)
            start = (t0 + datetime.timedelta(seconds=31 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            cat.write(
                '{"sid":"%s","account_sid":"%s","call_sid":"CA%032x","start_time":"%s",'
                '"duration":"1","channels":1,"source":"DialVerb","status":"completed",'
                '"formats":["mp3"]}\n' % (sid, account, i, start))
            if i not in missing:
                keys.write("%s/%s.mp3\n" % (account, sid))
    with open(os.path.join(out, "missing"), "w") as f, \
            open(os.path.join(out, "missing-keys"), "w") as k:
        for i in sorted(missing):
            f.write("RE%032x\n" % i)
            k.write("AC%032x/RE%032x.mp3\n" % (i % accounts, i))


COLUMNS = ("sid, account_sid, call_sid, start_time, duration, channels, source, "
           "track, status, error_code, formats, deleted_at, deleted_reason")


def scan(db, page):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    started = time.monotonic()
    n = pages = 0
    cursor = None
    while True:
        if cursor is None:
            rows = con.execute("SELECT %s FROM recordings ORDER BY account_sid, sid LIMIT %d"
                               % (COLUMNS, page)).fetchall()
        else:
            rows = con.execute("SELECT %s FROM recordings WHERE (account_sid, sid) > (?, ?) "
                               "ORDER BY account_sid, sid LIMIT %d" % (COLUMNS, page),
                               (cursor[1], cursor[0])).fetchall()
        pages += 1
        n += len(rows)
        if len(rows) < page:
            break
        cursor = rows[-1]
    secs = time.monotonic() - started
    print(json.dumps({"rows": n, "pages": pages, "page": page, "seconds": round(secs, 3),
                      "rows_per_s": round(n / secs, 1), "sqlite": sqlite3.sqlite_version}))


if sys.argv[1] == "fixtures":
    fixtures(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
elif sys.argv[1] == "scan":
    scan(sys.argv[2], int(sys.argv[3]))
else:
    sys.exit(__doc__)
