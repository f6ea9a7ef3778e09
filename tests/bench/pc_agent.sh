# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# One portcullisd for a bench (sourced by veth.sh and swap.sh), in the
# receiver's namespace, with its pins, state, audit log and control socket
# under the bench's own names. The caller sets PCD, PCCLI, PIN_DIR, WORK,
# NS_R and log().
PC_WRAP=		# timeout(1) around portcullisd

pc_env()
{
	PORTCULLIS_PIN_DIR=$PIN_DIR PORTCULLIS_STATE_DIR=$WORK/pc-state \
	PORTCULLIS_AUDIT_LOG=$WORK/pc-audit.jsonl \
	PORTCULLIS_CONTROL_SOCKET=$WORK/pc-control.sock "$@"
}

pc() { pc_env timeout 60 nsenter --net="/run/netns/$NS_R" -- "$PCCLI" --pin-dir "$PIN_DIR" "$@"; }

# pc_start POLICY [AGENT-ARGS...]: start the agent, wait until it is ready.
pc_start()
{
	local policy=$1 i
	shift
	unset SSH_CONNECTION
	mkdir -p "$WORK/pc-state"
	# timeout(1) itself is the background job, not a subshell around it:
	# pc_stop's TERM then reaches portcullisd and its wait sees it exit.
	PORTCULLIS_PIN_DIR=$PIN_DIR PORTCULLIS_STATE_DIR=$WORK/pc-state \
	PORTCULLIS_AUDIT_LOG=$WORK/pc-audit.jsonl \
	PORTCULLIS_CONTROL_SOCKET=$WORK/pc-control.sock \
	timeout 600 nsenter --net="/run/netns/$NS_R" -- "$PCD" \
		--policy "$policy" --pin-dir "$PIN_DIR" \
		--state-dir "$WORK/pc-state" --audit-log "$WORK/pc-audit.jsonl" \
		--control-socket "$WORK/pc-control.sock" "$@" \
		>"$WORK/pc.log" 2>&1 &
	PC_WRAP=$!
	for ((i = 0; i < 600; i++)); do
		grep -q 'portcullisd: ready' "$WORK/pc.log" && return 0
		kill -0 "$PC_WRAP" 2>/dev/null || break
		sleep 0.1
	done
	log "portcullisd did not get ready:"
	sed 's/^/    /' "$WORK/pc.log" >&2
	return 1
}

# pc_stop: detach, stop the agent and wait until it has exited (its lock
# released), so the next round's agent never meets the last one's lock.
pc_stop()
{
	local i
	[ -n "$PC_WRAP" ] || return 0
	[ -d "$PIN_DIR" ] && pc detach >/dev/null 2>&1
	kill -s TERM "$PC_WRAP" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		kill -0 "$PC_WRAP" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$PC_WRAP" 2>/dev/null; then
		log "portcullisd (under timeout pid $PC_WRAP) ignored TERM for 20 s: KILL"
		pkill -KILL -P "$PC_WRAP" 2>/dev/null
		kill -s KILL "$PC_WRAP" 2>/dev/null
	fi
	wait "$PC_WRAP" 2>/dev/null
	PC_WRAP=
	[ -d "$PIN_DIR" ] && rm -rf -- "$PIN_DIR"
	rm -rf -- "$WORK/pc-state"
}

# pc_reason REASON: ingress packets counted under it.
pc_reason() { pc status | awk -v r="$1" '$1 == r { print $2; exit }'; }
