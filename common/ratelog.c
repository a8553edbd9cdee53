// Rate-limited log lines (common/ratelog.h): a window counter per kind of
// event, and a summary of what was left out.
#include <inttypes.h>
#include <stdio.h>

#include "common/ratelog.h"

// Every ratelog used so far, for wf_ratelog_flush_all.
static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static wf_ratelog *all;

// group writes N with thousands separators ("4,512") into BUF.
static const char *
group(uint64_t n, char *buf, size_t len)
{
	char digits[32];
	int nd = snprintf(digits, sizeof(digits), "%" PRIu64, n);
	size_t o = 0;
	for (int i = 0; i < nd && o + 2 < len; i++) {
		if (i > 0 && (nd - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

// summary_due logs the summary if one is due; RL->mu is held.
static void
summary_due(wf_ratelog *rl, int64_t now_ms)
{
	if (rl->suppressed == 0 ||
		now_ms - rl->first_suppressed < WF_RATELOG_SUMMARY_MS)
		return;
	char n[40];
	int64_t secs = (now_ms - rl->first_suppressed + 500) / 1000;
	wf_log(rl->level, "... and %s more %s in the last %" PRId64 " s",
		group(rl->suppressed, n, sizeof(n)), rl->what, secs);
	rl->suppressed = 0;
}

static void
enlist(wf_ratelog *rl)
{
	// Lock order: RL->mu, then all_mu (flush_all takes all_mu alone
	// to walk, then each RL->mu after letting all_mu go).
	if (rl->registered)
		return;
	rl->registered = true;
	pthread_mutex_lock(&all_mu);
	rl->next = all;
	all = rl;
	pthread_mutex_unlock(&all_mu);
}

bool
wf_ratelog_allow(wf_ratelog *rl, int64_t now_ms)
{
	pthread_mutex_lock(&rl->mu);
	enlist(rl);
	summary_due(rl, now_ms);
	if (rl->in_win == 0 || now_ms - rl->win_start >= WF_RATELOG_WINDOW_MS ||
		now_ms < rl->win_start) {
		rl->win_start = now_ms;
		rl->in_win = 0;
	}
	bool ok = rl->in_win < WF_RATELOG_BURST;
	if (ok) {
		rl->in_win++;
	} else {
		if (rl->suppressed++ == 0)
			rl->first_suppressed = now_ms;
	}
	pthread_mutex_unlock(&rl->mu);
	return ok;
}

void
wf_ratelog_flush(wf_ratelog *rl, int64_t now_ms)
{
	pthread_mutex_lock(&rl->mu);
	summary_due(rl, now_ms);
	pthread_mutex_unlock(&rl->mu);
}

void
wf_ratelog_flush_all(int64_t now_ms)
{
	// Ratelogs are static and never leave the list: walking it after
	// letting all_mu go is safe.
	pthread_mutex_lock(&all_mu);
	wf_ratelog *head = all;
	pthread_mutex_unlock(&all_mu);
	for (wf_ratelog *rl = head; rl != NULL; rl = rl->next)
		wf_ratelog_flush(rl, now_ms);
}
