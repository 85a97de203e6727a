#!/usr/bin/env bash
# Starts a throwaway MIT Kerberos KDC on loopback for tests/kerberos.rs and prints the
# environment to use (eval "$(tests/kdc/setup.sh)").
#
# Realm TOKIO.TEST; principals vagrant@TOKIO.TEST (password "vagrant"), fanout,
# lockout and spnegofan (password: their name), logger (password Kerb-Pa55-XYZZY), and
# HTTP/localhost@TOKIO.TEST (random key, exported to a keytab); aes256-cts only. The user
# requires pre-authentication, as Active Directory does (sspi expects it).
# All files live in a temporary directory; krb5kdc runs in the foreground (-n) in the
# background of this script's caller and is stopped by `kill $TOKIO_WINRM_KDC_PID`.
# Needs krb5kdc, kdb5_util and kadmin.local (Debian: krb5-kdc).
set -euo pipefail

REALM=TOKIO.TEST
PORT="${TOKIO_WINRM_KDC_PORT:-}"
if [[ -z "$PORT" ]]; then
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
fi
PATH="$PATH:/usr/sbin:/sbin"
for tool in krb5kdc kdb5_util kadmin.local; do
    command -v "$tool" >/dev/null || { echo "setup.sh: $tool not found (install krb5-kdc)" >&2; exit 1; }
done

DIR="$(mktemp -d "${TMPDIR:-/tmp}/tokio-winrm-kdc.XXXXXX")"
cat >"$DIR/krb5.conf" <<CONF
[libdefaults]
    default_realm = $REALM
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    permitted_enctypes = aes256-cts-hmac-sha1-96
    udp_preference_limit = 1
[realms]
    $REALM = {
        kdc = 127.0.0.1:$PORT
        database_name = $DIR/principal
        key_stash_file = $DIR/stash
    }
CONF
# Logging is set in kdc.conf only: krb5kdc reads both profiles, and a [logging] in each
# writes every line twice (tests count AS_REQ and TGS_REQ lines in kdc.log).
cat >"$DIR/kdc.conf" <<CONF
[kdcdefaults]
    kdc_ports = $PORT
    kdc_tcp_ports = $PORT
[realms]
    $REALM = {
        database_name = $DIR/principal
        key_stash_file = $DIR/stash
        acl_file = $DIR/kadm5.acl
        max_life = 10h
        supported_enctypes = aes256-cts-hmac-sha1-96:normal
        kdc_listen = 127.0.0.1:$PORT
        kdc_tcp_listen = 127.0.0.1:$PORT
    }
[logging]
    kdc = FILE:$DIR/kdc.log
CONF
: >"$DIR/kadm5.acl"
export KRB5_CONFIG="$DIR/krb5.conf" KRB5_KDC_PROFILE="$DIR/kdc.conf"

kdb5_util -r "$REALM" create -s -P "master-$RANDOM$RANDOM" >"$DIR/setup.log" 2>&1
kadmin.local -r "$REALM" -q "addprinc +requires_preauth -pw vagrant vagrant@$REALM" >>"$DIR/setup.log" 2>&1
# Principals of their own for the tests that count KDC exchanges in kdc.log (tests
# run in parallel; each counts the lines of its own principal).
for p in fanout lockout spnegofan; do
    kadmin.local -r "$REALM" -q "addprinc +requires_preauth -pw $p $p@$REALM" >>"$DIR/setup.log" 2>&1
done
# A password unlike any other text, for the test that greps logs for it.
kadmin.local -r "$REALM" -q "addprinc +requires_preauth -pw Kerb-Pa55-XYZZY logger@$REALM" >>"$DIR/setup.log" 2>&1
# The GSSAPI tests (feature gssapi): gsscache, gssfanout and gsswrong log in with kinit
# (password: their name) into ticket caches of their own; gsskeytab's key is only in
# client.keytab; gssexpire's tickets live 3 seconds at most (the expired-ticket test).
for p in gsscache gssfanout gssexpire; do
    kadmin.local -r "$REALM" -q "addprinc +requires_preauth -pw $p $p@$REALM" >>"$DIR/setup.log" 2>&1
done
kadmin.local -r "$REALM" -q "modprinc -maxlife \"3 seconds\" gssexpire@$REALM" >>"$DIR/setup.log" 2>&1
kadmin.local -r "$REALM" -q "addprinc +requires_preauth -randkey gsskeytab@$REALM" >>"$DIR/setup.log" 2>&1
kadmin.local -r "$REALM" -q "ktadd -k $DIR/client.keytab -e aes256-cts-hmac-sha1-96:normal gsskeytab@$REALM" >>"$DIR/setup.log" 2>&1
kadmin.local -r "$REALM" -q "addprinc -randkey HTTP/localhost@$REALM" >>"$DIR/setup.log" 2>&1
kadmin.local -r "$REALM" -q "ktadd -k $DIR/http.keytab -e aes256-cts-hmac-sha1-96:normal HTTP/localhost@$REALM" >>"$DIR/setup.log" 2>&1

krb5kdc -n -r "$REALM" -P "$DIR/kdc.pid" </dev/null >>"$DIR/kdc.out" 2>&1 &
KDC_PID=$!
for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        break
    fi
    if ! kill -0 "$KDC_PID" 2>/dev/null; then
        echo "setup.sh: krb5kdc exited:" >&2
        cat "$DIR/kdc.out" "$DIR/kdc.log" >&2 2>/dev/null || true
        exit 1
    fi
    sleep 0.1
done

cat <<ENV
export KRB5_CONFIG='$DIR/krb5.conf'
export KRB5_KDC_PROFILE='$DIR/kdc.conf'
export TOKIO_WINRM_KDC='127.0.0.1:$PORT'
export TOKIO_WINRM_KDC_REALM='$REALM'
export TOKIO_WINRM_KDC_KEYTAB='$DIR/http.keytab'
export TOKIO_WINRM_KDC_CLIENT_KEYTAB='$DIR/client.keytab'
export TOKIO_WINRM_KDC_DIR='$DIR'
export TOKIO_WINRM_KDC_PID='$KDC_PID'
ENV
