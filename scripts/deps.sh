#!/usr/bin/env bash
# Installs the real SIP peers the tests drive (SIPp, Kamailio with its TLS module, baresip, linphonec, perl's
# Net::SIP, wrk as flashotp bench's load generator, aiosmtpd as the SMTP server of the email tests, zbarimg to read QR codes back, node and npm for the
# test SMSC: an SMPP server on the npm package smpp in testdata/smsc, and for the console's Vitest tests in web/),
# chromium for the console's browser tests, PostgreSQL for the shared store's tests, and the checkers of the shipping files (systemd-analyze for the unit, promtool for the alert rules; podman with
# runc and a static busybox to build and run the image) when they are missing: as root through apt-get, otherwise
# it fails naming the Debian packages to install.
set -euo pipefail

need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v wrk >/dev/null 2>&1 || need+=(wrk) # flashotp bench's load generator (parts c and e)
command -v kamailio >/dev/null 2>&1 || need+=(kamailio)
command -v baresip >/dev/null 2>&1 || need+=(baresip-core)
command -v linphonec >/dev/null 2>&1 || need+=(linphone-cli)
perl -MNet::SIP -e 1 >/dev/null 2>&1 || need+=(libnet-sip-perl)
[ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] || need+=(kamailio-tls-modules)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v zbarimg >/dev/null 2>&1 || need+=(zbar-tools) # reads back the authenticator enrollment's QR code
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || need+=(busybox-static)
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need+=(python3-aiosmtpd)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v chromium >/dev/null 2>&1 || need+=(chromium) # the console's browser tests (chromedp) and screenshots
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql) # the PostgreSQL store's tests (store/postgres)

# smsc_modules installs the test SMSC's npm packages (testdata/smsc/package-lock.json) when they are missing.
smsc_modules() {
  local dir
  dir="$(dirname "$0")/../testdata/smsc"
  [ -d "$dir/node_modules/smpp" ] || npm ci --prefix "$dir" --no-audit --no-fund >/dev/null
}

# web_modules installs the console's npm packages (web/package-lock.json: Vite, Vue, Vitest) when they are
# missing or older than the lockfile.
web_modules() {
  local dir
  dir="$(dirname "$0")/../web"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    npm ci --prefix "$dir" --no-audit --no-fund >/dev/null
  fi
}
if [ ${#need[@]} -eq 0 ]; then
  smsc_modules
  web_modules
  exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  smsc_modules
  web_modules
  exit 0
fi
echo "missing test tools: install the Debian packages: ${need[*]} (e.g. sudo apt-get install ${need[*]})" >&2
exit 1
