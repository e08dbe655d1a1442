#!/usr/bin/env python3
"""An independent HOTP (RFC 4226) on Python's standard library: the tests check the engine against it.

Usage: oath.py BASE32_SECRET DIGITS COUNTER...  prints each counter's code on its own line. A TOTP code
(RFC 6238) is the HOTP code of the time step floor(unix time / 30): the tests pass steps as counters.
"""
import base64
import hashlib
import hmac
import struct
import sys

secret, digits = sys.argv[1], int(sys.argv[2])
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
for counter in sys.argv[3:]:
    mac = hmac.new(key, struct.pack(">Q", int(counter)), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    print(str(value % 10**digits).zfill(digits))
