#!/usr/bin/env python3
"""Fixtures for the ingest benchmark, made with Python's own hmac (not the
gateway's code): a JSONL file of Twilio Recording rows, and signed webhook
bodies for wrk to replay.

gen.py rows N FILE                    one Twilio Recording JSON per line
gen.py webhooks N URL TOKEN AC FILE   "body<TAB>signature" per line
"""
import base64, hashlib, hmac, json, sys, urllib.parse


def rows(n, path):
    with open(path, "w") as f:
        for i in range(n):
            hh, mm, ss = (i // 3600) % 24, (i // 60) % 60, i % 60
            f.write(json.dumps({
                "sid": "RE%032x" % i, "account_sid": "AC%032x" % (i % 50), "call_sid": "CA%032x" % i,
                "start_time": "Tue, 09 May 2017 %02d:%02d:%02d +0000" % (hh, mm, ss),
                "duration": str(5 + i % 600), "status": "completed", "channels": 1, "source": "DialVerb",
                "price": "-0.0025", "price_unit": "USD", "uri": "/2010-04-01/...",
            }) + "\n")


def webhooks(n, url, token, account, path):
    with open(path, "w") as f:
        for i in range(n):
            params = [("AccountSid", account), ("CallSid", "CA%032x" % i), ("RecordingSid", "RE%032x" % (i + 10**9)),
                      ("RecordingStatus", "completed"), ("RecordingDuration", "42"), ("RecordingChannels", "1"),
                      ("RecordingSource", "DialVerb"), ("RecordingStartTime", "Tue, 09 May 2017 16:00:00 +0000")]
            data = url + "".join(k + v for k, v in sorted(params))
            sig = base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()
            f.write(urllib.parse.urlencode(params) + "\t" + sig + "\n")


if sys.argv[1] == "rows":
    rows(int(sys.argv[2]), sys.argv[3])
else:
    webhooks(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])
