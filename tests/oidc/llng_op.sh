#!/usr/bin/env bash
# Starts LemonLDAP::NG as an OpenID provider for the SSO tests, as the calling user, on
# 127.0.0.1 only, with everything it writes under DIR (configuration, keys, sessions, cache):
# nothing in /etc or /var. The last step execs plackup, so the caller's child pid is the
# provider's pid and stopping it is one kill.
#
#   llng_op.sh DIR PORT REDIRECT_URI CLIENT_SECRET
#   llng_op.sh --rotate DIR KID   (the running provider's signing key replaced by a new one named
#                                  KID: a configuration lmConf-<n+1>.json it loads within ~1 s)
#
# The provider: issuer https://127.0.0.1:PORT (TLS with a self-signed certificate, DIR/ca.pem
# for the relying party), one relying party "cleave" (client_secret_basic or _post, PKCE
# required, consent skipped), ID tokens signed RS256 with a key made here (kid "cleave-test"),
# the Demo user database (dwho, rtyler, msmith; password = login) and a claim cleave_role set by
# a macro: dwho is admin, rtyler auditor, msmith has none (the refusal case).
set -euo pipefail
if [ "${1:-}" = "--rotate" ] && [ $# -eq 3 ]; then
	dir=$2 kid=$3
	last=$(ls "$dir/conf" | sed -n 's/^lmConf-\([0-9]*\)\.json$/\1/p' | sort -n | tail -n 1)
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/sig-$kid.key" 2>/dev/null
	openssl pkey -in "$dir/sig-$kid.key" -pubout -out "$dir/sig-$kid.pub" 2>/dev/null
	jq --arg kid "$kid" --argjson n $((last + 1)) \
		--rawfile priv "$dir/sig-$kid.key" --rawfile pub "$dir/sig-$kid.pub" \
		'.cfgNum = $n | .oidcServicePrivateKeySig = $priv | .oidcServicePublicKeySig = $pub
		 | .oidcServiceKeyIdSig = $kid' "$dir/conf/lmConf-$last.json" >"$dir/conf/.next.json"
	mv "$dir/conf/.next.json" "$dir/conf/lmConf-$((last + 1)).json"
	exit 0
fi
[ $# -eq 4 ] || { echo "usage: $0 DIR PORT REDIRECT_URI CLIENT_SECRET | --rotate DIR KID" >&2; exit 2; }
dir=$1 port=$2 redirect=$3 secret=$4
here=$(cd "$(dirname "$0")" && pwd)
portal="https://127.0.0.1:$port/"
mkdir -p "$dir"/conf "$dir"/sessions/lock "$dir"/psessions/lock "$dir"/cache

# TLS certificate of the portal (its own CA: the relying party's CA file) and the ID token key.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
	-addext "subjectAltName=IP:127.0.0.1" -keyout "$dir/tls.key" -out "$dir/ca.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/sig.key" 2>/dev/null
openssl pkey -in "$dir/sig.key" -pubout -out "$dir/sig.pub" 2>/dev/null

cat >"$dir/lemonldap-ng.ini" <<INI
[all]
logLevel = ${LLNG_LOGLEVEL:-warn}
checkTime = 1

[configuration]
type = File
dirName = $dir/conf
localStorage = Cache::FileCache
localStorageOptions = { 'namespace' => 'llng-config', 'default_expires_in' => 600, 'cache_root' => '$dir/cache', 'cache_depth' => 3 }

[portal]
staticPrefix = /static
templateDir = /usr/share/lemonldap-ng/portal/templates
languages = en
INI

# The whole configuration (LemonLDAP::NG's File backend reads lmConf-<cfgNum>.json).
jq -n --arg portal "$portal" --arg issuer "https://127.0.0.1:$port" --arg dir "$dir" \
	--arg redirect "$redirect" --arg secret "$secret" \
	--rawfile priv "$dir/sig.key" --rawfile pub "$dir/sig.pub" '{
  cfgNum: 1, cfgAuthor: "cleave tests", cfgDate: "1700000000", cfgVersion: "2.16.1",
  portal: $portal, domain: "127.0.0.1", cookieName: "llngtest", securedCookie: 1,
  https: 1, timeout: 3600, checkTime: 1,
  authentication: "Demo", userDB: "Same", passwordDB: "Demo", registerDB: "Null",
  demoExportedVars: {cn: "cn", mail: "mail", uid: "uid"},
  macros: {
    cleave_role: "$uid eq \"dwho\" ? \"admin\" : $uid eq \"rtyler\" ? \"auditor\" : \"\"",
    _whatToTrace: "$uid"
  },
  whatToTrace: "_whatToTrace", exportedVars: {}, groups: {},
  locationRules: {"127.0.0.1": {default: "accept"}},
  globalStorage: "Apache::Session::File",
  globalStorageOptions: {Directory: ($dir + "/sessions"), LockDirectory: ($dir + "/sessions/lock"),
    generateModule: "Lemonldap::NG::Common::Apache::Session::Generate::SHA256"},
  persistentStorage: "Apache::Session::File",
  persistentStorageOptions: {Directory: ($dir + "/psessions"), LockDirectory: ($dir + "/psessions/lock")},
  localSessionStorage: "Cache::FileCache",
  localSessionStorageOptions: {namespace: "llng-sessions", default_expires_in: 600,
    cache_root: ($dir + "/cache"), cache_depth: 3},
  loginHistoryEnabled: 0, notification: 0, portalSkin: "bootstrap", portalCheckLogins: 0,
  stayConnected: 0, checkXSS: 1, portalDisplayRegister: 0, portalDisplayResetPassword: 0, captcha: "CleaveTest::NoCaptcha", captcha_login_enabled: 0,
  captcha_mail_enabled: 0, captcha_register_enabled: 0,
  issuerDBOpenIDConnectActivation: 1, issuerDBOpenIDConnectPath: "^/oauth2/",
  oidcServiceMetaDataIssuer: $issuer,
  oidcServicePrivateKeySig: $priv, oidcServicePublicKeySig: $pub, oidcServiceKeyIdSig: "cleave-test",
  oidcServiceAllowAuthorizationCodeFlow: 1, oidcServiceAllowImplicitFlow: 0,
  oidcServiceAllowHybridFlow: 0, oidcServiceIgnoreScopeForClaims: 0,
  oidcRPMetaDataOptions: {cleave: {
    oidcRPMetaDataOptionsClientID: "cleave", oidcRPMetaDataOptionsClientSecret: $secret,
    oidcRPMetaDataOptionsDisplayName: "Cleave", oidcRPMetaDataOptionsRedirectUris: $redirect,
    oidcRPMetaDataOptionsRequirePKCE: 1, oidcRPMetaDataOptionsPublic: 0,
    oidcRPMetaDataOptionsBypassConsent: 1, oidcRPMetaDataOptionsIDTokenSignAlg: "RS256",
    oidcRPMetaDataOptionsIDTokenForceClaims: 1, oidcRPMetaDataOptionsIDTokenExpiration: 300,
    oidcRPMetaDataOptionsAccessTokenExpiration: 300, oidcRPMetaDataOptionsUserIDAttr: "uid"}},
  oidcRPMetaDataExportedVars: {cleave: {email: "mail", name: "cn", cleave_role: "cleave_role"}},
  oidcRPMetaDataOptionsExtraClaims: {cleave: {cleave: "cleave_role"}}
}' >"$dir/conf/lmConf-1.json"

export LLNG_DEFAULTCONFFILE="$dir/lemonldap-ng.ini"
exec plackup -I "$here/perl" -s HTTP::Server::PSGI --host 127.0.0.1 --port "$port" \
	--ssl 1 --ssl-key-file "$dir/tls.key" --ssl-cert-file "$dir/ca.pem" \
	--no-default-middleware "$here/llng_op.psgi"
