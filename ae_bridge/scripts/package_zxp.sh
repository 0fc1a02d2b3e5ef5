#!/usr/bin/env bash
# Packages the extension: stages a clean copy under dist/com.genfx.ae/ (runtime files + production
# node_modules installed flat by npm, no symlinks, no dev tools, no .debug), then signs
# dist/genfx-ae-<version>.zxp with ZXPSignCmd when it is on PATH (or $ZXPSIGNCMD names it).
#
#   scripts/package_zxp.sh                      # self-signed certificate made in dist/ (testing only)
#   GENFX_ZXP_CERT=studio.p12 GENFX_ZXP_PASSWORD=... scripts/package_zxp.sh
#   GENFX_ZXP_TSA=http://timestamp.digicert.com/ ...   # add a timestamp (needs network)
#
# Without ZXPSignCmd it stops after staging and says how to get it; the staged folder can still be
# installed unsigned for development (README: PlayerDebugMode). Sign on the OS you install on when
# you can (Adobe's 2024 known issue: ZXPs with symlinks or built elsewhere may show blank panels).
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE_ID=com.genfx.ae
VERSION=$(node -p "require('./package.json').version")
DIST="${GENFX_ZXP_DIST:-dist}"
STAGE="$DIST/$BUNDLE_ID"
ZXP="$DIST/genfx-ae-$VERSION.zxp"

node scripts/sync_proto.js --check

rm -rf "$STAGE"
mkdir -p "$STAGE"
cp -R CSXS client shared node protos package.json package-lock.json "$STAGE/"
mkdir -p "$STAGE/host"
cp -R host/index.jsx host/genfx_host.jsx host/lib "$STAGE/host/"
# Production dependencies only (pure JS: @grpc/grpc-js, @grpc/proto-loader and theirs), flat.
(cd "$STAGE" && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund --prefer-offline --install-links --no-bin-links >/dev/null)
find "$STAGE" \( -name .DS_Store -o -name __MACOSX -o -name '*.map' \) -prune -exec rm -rf {} +
if [ -n "$(find "$STAGE" -type l)" ]; then
  echo "package_zxp: symlinks in the staged extension (they break installed panels):" >&2
  find "$STAGE" -type l >&2
  exit 1
fi
echo "staged $STAGE ($(du -sh "$STAGE" | cut -f1))"

SIGN="${ZXPSIGNCMD:-$(command -v ZXPSignCmd || true)}"
if [ -z "$SIGN" ]; then
  cat <<MSG
No ZXP written: ZXPSignCmd is not on PATH.
  Get it from Adobe's CEP-Resources repository on GitHub (folder ZXPSignCMD/, version 4.1.3 or later;
  macOS, Windows x64 and Win32 builds), put it on PATH (or set ZXPSIGNCMD=/path/to/ZXPSignCmd) and
  run this script again. On macOS allow it in Gatekeeper and chmod +x it first.
  For development you do not need a ZXP: install the folder unsigned (README, "Install for development").
MSG
  exit 0
fi

CERT="${GENFX_ZXP_CERT:-}"
PASSWORD="${GENFX_ZXP_PASSWORD:-}"
if [ -z "$CERT" ]; then
  CERT="$DIST/genfx-selfsigned.p12"
  PASSWORD="${PASSWORD:-genfx-dev}"
  if [ ! -f "$CERT" ]; then
    "$SIGN" -selfSignedCert US CA GenFX "GenFX AE panel" "$PASSWORD" "$CERT"
  fi
  echo "signing with a self-signed certificate ($CERT): fine for testing, not for distribution"
fi
rm -f "$ZXP"
if [ -n "${GENFX_ZXP_TSA:-}" ]; then
  "$SIGN" -sign "$STAGE" "$ZXP" "$CERT" "$PASSWORD" -tsa "$GENFX_ZXP_TSA"
else
  "$SIGN" -sign "$STAGE" "$ZXP" "$CERT" "$PASSWORD"
fi
"$SIGN" -verify "$ZXP"
echo "wrote $ZXP"
