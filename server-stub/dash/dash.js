/* Fleet dashboard (docs/dashboard.md): read-only pages over fleetd's
 * /api/v1, polled every few seconds with the session cookie.  Every
 * value goes into the page as text (textContent, text nodes,
 * setAttribute), never as HTML. */
'use strict';
(function () {
	const POLL_MS = 3000;
	const PAGE = 50; /* devices a page; #/devices?size=N for others */
	const SVG = 'http://www.w3.org/2000/svg';
	const STATES = ['healthy', 'updated', 'commanded', 'pending', 'failed',
		'rolled-back', 'rolling-back', 'rollback-failed', 'skipped',
		'cancelled'];
	let timer = null;
	let gen = 0; /* the view being shown; older replies are dropped */

	function $(id) { return document.getElementById(id); }

	/* el('td', {class: 'x'}, 'text', node...): strings become text. */
	function el(tag, attrs, ...kids) {
		const e = document.createElement(tag);
		for (const [k, v] of Object.entries(attrs || {}))
			if (v !== null && v !== undefined)
				e.setAttribute(k, v);
		for (const k of kids)
			if (k !== null && k !== undefined)
				e.append(k instanceof Node ? k : String(k));
		return e;
	}

	function svg(tag, attrs) {
		const e = document.createElementNS(SVG, tag);
		for (const [k, v] of Object.entries(attrs || {}))
			e.setAttribute(k, v);
		return e;
	}

	function link(href, text) { return el('a', {href: href}, text); }
	function devLink(id) {
		return id ? link('#/device/' + encodeURIComponent(id), id) : '';
	}
	function rolloutLink(id) {
		return id ? link('#/rollout/' + encodeURIComponent(id), id) : '';
	}
	function when(t) { return t ? t.replace('T', ' ').replace('Z', ' UTC') : '—'; }
	function yesno(b) {
		return el('span', {class: b ? 'online' : 'offline'},
			b ? 'online' : 'offline');
	}

	/* A table of @rows; @cols: [[heading, row => value], ...]. */
	function table(cols, rows, empty) {
		if (!rows.length)
			return el('p', {class: 'muted'}, empty || 'none');
		const head = el('tr', null, ...cols.map(c => el('th', null, c[0])));
		const body = rows.map(r => el('tr', null,
			...cols.map(c => el('td', null, c[1](r)))));
		return el('table', null, el('thead', null, head),
			el('tbody', null, ...body));
	}

	/* [[key, value], ...] as a two-column table. */
	function facts(pairs) {
		return el('table', {class: 'facts'}, el('tbody', null,
			...pairs.map(p => el('tr', null, el('th', null, p[0]),
				el('td', null, p[1])))));
	}

	function card(n, k, cls) {
		return el('div', {class: 'card'}, el('div', {class: 'n ' +
			(cls || '')}, n), el('div', {class: 'k'}, k));
	}

	class LoggedOut extends Error {}

	async function api(path) {
		const res = await fetch(path, {credentials: 'same-origin',
			headers: {Accept: 'application/json'}});
		if (res.status === 401)
			throw new LoggedOut();
		const body = await res.json();
		if (!res.ok)
			throw new Error(body.error ? body.error.message :
				'HTTP ' + res.status);
		return body;
	}

	async function post(path, body) {
		const res = await fetch(path, {method: 'POST',
			credentials: 'same-origin',
			headers: {'Content-Type': 'application/json'},
			body: JSON.stringify(body || {})});
		return {ok: res.ok, body: await res.json()};
	}

	function status(text, bad) {
		$('status').textContent = text;
		$('status').className = bad ? 'error' : '';
	}

	/* --- login -------------------------------------------------------- */

	function showLogin(msg) {
		clearTimeout(timer);
		gen++;
		$('top').hidden = true;
		$('view').hidden = true;
		$('login').hidden = false;
		$('login-error').textContent = msg || '';
		$('token').focus();
	}

	async function onLogin(ev) {
		ev.preventDefault();
		const r = await post('/dash/login', {token: $('token').value});
		$('token').value = '';
		if (!r.ok) {
			$('login-error').textContent = r.body.error ?
				r.body.error.message : 'login refused';
			return;
		}
		start(r.body);
	}

	async function onLogout() {
		await post('/dash/logout');
		showLogin('logged out');
	}

	function start(session) {
		$('login').hidden = true;
		$('top').hidden = false;
		$('view').hidden = false;
		$('who').textContent = session.name + ' (' + session.role + ')';
		route();
	}

	/* --- pages -------------------------------------------------------- */

	/* Each page loads its data and returns what draws it into the view
	 * (nothing is drawn when the view changed meanwhile). */
	async function overview() {
		const [devs, jobs, rollouts, running] = await Promise.all([
			api('/api/v1/devices'), api('/api/v1/jobs?limit=1000'),
			api('/api/v1/rollouts?limit=20'),
			api('/api/v1/rollouts?state=running&limit=1000')]);
		const online = devs.filter(d => d.online).length;
		const open = jobs.filter(j => !j.final);
		const versions = {};
		for (const d of devs)
			versions[d.firmware || '(none)'] =
				(versions[d.firmware || '(none)'] || 0) + 1;
		return view => view.replaceChildren(el('h1', null,
			'Fleet overview'),
			el('div', {class: 'cards'},
				card(devs.length, 'devices'),
				card(online, 'online', 'online'),
				card(devs.length - online, 'offline', 'offline'),
				card(open.length, 'open jobs'),
				card(running.length, 'running rollouts')),
			el('h2', null, 'Versions'),
			table([['Firmware', v => v[0]], ['Devices', v => v[1]]],
				Object.entries(versions).sort()),
			el('h2', null, 'Rollouts'),
			table([['Rollout', r => rolloutLink(r.id)],
				['State', r => el('span', {class: r.state}, r.state)],
				['Wave', r => r.wave + ' of ' + r.waves_total],
				['Bundle', r => (r.bundle.name || r.bundle.id) + ' ' +
					r.bundle.version],
				['Done', r => (r.counts.healthy + r.counts.updated) +
					' of ' + r.total],
				['Failed', r => r.counts.failed],
				['Updated', r => when(r.updated)]],
			rollouts, 'no rollouts'),
			el('h2', null, 'Open jobs'),
			jobTable(open.slice(0, 20), true));
	}

	function jobTable(jobs, withDevice) {
		const cols = [['Job', j => j.id]];
		if (withDevice)
			cols.push(['Device', j => devLink(j.device)]);
		cols.push(['Type', j => j.type], ['State', j => el('span',
			{class: j.state}, j.state)],
		['Version', j => (j.from_version || '') +
			(j.to_version ? ' → ' + j.to_version : '')],
		['Rollout', j => rolloutLink(j.rollout)],
		['Reason', j => j.reason || ''],
		['Updated', j => when(j.updated)]);
		return table(cols, jobs, 'no jobs');
	}

	/* The device list's own filters (GET /api/v1/devices). */
	const FILTERS = ['group', 'version', 'label', 'online'];

	function searchForm(q) {
		const field = (name, label) => el('label', null, label,
			el('input', {name: name, value: q.get(name) || ''}));
		const online = el('select', {name: 'online'},
			el('option', {value: ''}, 'any'),
			el('option', {value: 'true'}, 'online'),
			el('option', {value: 'false'}, 'offline'));
		online.value = q.get('online') || '';
		const form = el('form', {class: 'search', id: 'search'},
			field('group', 'Group'), field('version', 'Firmware'),
			field('label', 'Label (key or key=value)'),
			el('label', null, 'State', online),
			el('button', {type: 'submit'}, 'Search'));
		form.addEventListener('submit', ev => {
			ev.preventDefault();
			const p = new URLSearchParams();
			for (const f of FILTERS)
				if (form.elements[f].value)
					p.set(f, form.elements[f].value);
			location.hash = '#/devices?' + p.toString();
		});
		return form;
	}

	function pager(q, page, pages) {
		const go = n => {
			const p = new URLSearchParams(q);
			p.set('page', n);
			return '#/devices?' + p.toString();
		};
		return el('div', {class: 'pager'},
			page > 1 ? link(go(page - 1), '‹ previous') : '',
			el('span', null, 'page ' + page + ' of ' + pages),
			page < pages ? link(go(page + 1), 'next ›') : '');
	}

	async function devices(q) {
		const p = new URLSearchParams();
		for (const f of FILTERS)
			if (q.get(f))
				p.set(f, q.get(f));
		const devs = await api('/api/v1/devices?' + p.toString());
		const size = Math.min(500, Math.max(1, num(q.get('size'), PAGE)));
		const pages = Math.max(1, Math.ceil(devs.length / size));
		const page = Math.min(pages, Math.max(1, num(q.get('page'), 1)));
		const rows = devs.slice((page - 1) * size, page * size);
		return view => {
			if (!$('search'))
				view.replaceChildren(el('h1', null, 'Devices'),
					searchForm(q), el('div', {id: 'results'}));
			$('results').replaceChildren(
			el('p', null, devs.length + ' devices'),
			table([['Device', d => devLink(d.id)],
				['Group', d => d.group || ''],
				['State', d => yesno(d.online)],
				['Firmware', d => d.firmware || ''],
				['Slot', d => d.slot || ''],
				['Health', d => d.health || ''],
				['Last seen', d => when(d.last_seen)],
				['Labels', d => labels(d.labels)]],
			rows, 'no device matches'),
			pager(q, page, pages));
		};
	}

	function num(s, def) { return parseInt(s || '', 10) || def; }

	function labels(l) {
		return Object.entries(l || {}).map(e => e[0] + '=' + e[1])
			.join(' ');
	}

	/* A small line chart of one metric's points. */
	function chart(metric, pts) {
		const w = 300, h = 80;
		const vs = pts.map(p => p.value);
		const lo = Math.min(...vs), hi = Math.max(...vs);
		const t0 = Date.parse(pts[0].ts), t1 = Date.parse(pts[pts.length - 1].ts);
		const x = p => (t1 > t0 ? (Date.parse(p.ts) - t0) / (t1 - t0) : 0.5) * w;
		const y = p => h - 4 - (hi > lo ? (p.value - lo) / (hi - lo) : 0.5) * (h - 8);
		const s = svg('svg', {class: 'chart', viewBox: '0 0 ' + w + ' ' + h,
			preserveAspectRatio: 'none', role: 'img'});
		const title = svg('title');
		title.textContent = metric;
		s.append(title, svg('polyline', {points: pts.map(p =>
			x(p).toFixed(1) + ',' + y(p).toFixed(1)).join(' ')}));
		return el('div', null, el('h3', null, metric + ': ' +
			vs[vs.length - 1] + ' (min ' + lo + ', max ' + hi + ', ' +
			pts.length + ' points)'), s);
	}

	function charts(tele) {
		const by = {};
		for (const p of tele.points)
			(by[p.metric] = by[p.metric] || []).push(p);
		const names = Object.keys(by).sort().slice(0, 6);
		if (!names.length)
			return el('p', {class: 'muted'}, 'no telemetry');
		return el('div', {class: 'grid'},
			...names.map(m => chart(m, by[m])));
	}

	async function device(id) {
		const enc = encodeURIComponent(id);
		const [d, jobs, shadow, tele] = await Promise.all([
			api('/api/v1/devices/' + enc),
			api('/api/v1/jobs?limit=20&device=' + enc),
			api('/api/v1/devices/' + enc + '/shadow'),
			api('/api/v1/devices/' + enc + '/telemetry?limit=500')]);
		return view => view.replaceChildren(el('h1', null, 'Device ',
			d.id),
			el('div', {class: 'grid'},
				el('div', null, el('h2', null, 'Identity'), facts([
					['Device', d.id], ['Group', d.group || ''],
					['State', d.state], ['Connection', yesno(d.online)],
					['Last seen', when(d.last_seen)],
					['Enrolled', when(d.created) + ' by ' +
						(d.enrolled_by || '?')],
					['Certificate', (d.cert_serial || 'none') +
						' until ' + when(d.cert_expires)],
					['Labels', labels(d.labels)]])),
				el('div', null, el('h2', null, 'Slots and versions'),
					facts([['Firmware', d.firmware || ''],
						['Booted slot', d.slot || ''],
						['Health', d.health || ''],
						['Agent', d.agent || '']]))),
			el('h2', null, 'Telemetry'), charts(tele),
			el('h2', null, 'Job history'), jobTable(jobs, false),
			el('h2', null, 'Shadow'),
			el('div', {class: 'grid'},
				el('div', null, el('h3', null, 'Reported (version ' +
					shadow.reported.version + ')'),
					el('pre', null, JSON.stringify(
						shadow.reported.state, null, 2))),
				el('div', null, el('h3', null, 'Desired (version ' +
					shadow.desired.version + ')'),
					el('pre', null, JSON.stringify(
						shadow.desired.state, null, 2)))));
	}

	/* One wave as a bar of its devices' states. */
	function waveBar(w) {
		const s = svg('svg', {class: 'bar', viewBox: '0 0 100 10',
			preserveAspectRatio: 'none'});
		let at = 0;
		for (const st of STATES) {
			const n = w.counts[st] || 0;
			if (!n || !w.devices)
				continue;
			const width = n * 100 / w.devices;
			const r = svg('rect', {x: at, y: 0, width: width, height: 10,
				class: 's-' + st});
			const t = svg('title');
			t.textContent = st + ': ' + n;
			r.append(t);
			s.append(r);
			at += width;
		}
		const parts = STATES.filter(st => w.counts[st]).map(st =>
			st + ' ' + w.counts[st]);
		return el('div', {class: 'wave'}, el('div', null, 'Wave ' + w.wave +
			' (up to ' + w.stop + ', ' + w.devices + ' devices): ' +
			(parts.join(', ') || 'not started')), s);
	}

	async function rollout(id) {
		const r = await api('/api/v1/rollouts/' + encodeURIComponent(id) +
			'?events=1');
		const g = r.gate;
		return view => view.replaceChildren(el('h1', null, 'Rollout ',
			r.id),
			facts([['State', el('span', {class: r.state}, r.state)],
				['Reason', r.reason || ''],
				['Bundle', (r.bundle.name || r.bundle.id) + ' ' +
					r.bundle.version],
				['Wave', r.wave + ' of ' + r.waves_total],
				['Devices', r.total],
				['Gate', g.failed + ' failed of ' + g.finished +
					' finished (' + g.percent + '%, threshold ' +
					g.threshold + '%, min sample ' + g.min_sample + ')' +
					(g.tripped ? ': tripped' : '')],
				['Soak until', when(r.soak_until)],
				['Created', when(r.created) + ' by ' +
					(r.created_by || '?')],
				['Finished', when(r.finished)]]),
			el('h2', null, 'Waves'), ...r.waves.map(waveBar),
			el('h2', null, 'Failures'),
			table([['Device', f => devLink(f.device)],
				['Wave', f => f.wave], ['State', f => el('span',
					{class: f.state}, f.state)],
				['Reason', f => f.reason || ''],
				['Time', f => when(f.time)]],
			r.failures, 'no failures'),
			el('h2', null, 'Timeline'),
			table([['Time', e => when(e.time)], ['Event', e => e.kind],
				['Wave', e => e.wave || ''],
				['Device', e => devLink(e.device)],
				['Detail', e => e.detail || '']],
			(r.events || []).slice().reverse(), 'no events'));
	}

	/* --- routing and polling ----------------------------------------- */

	function parseHash() {
		const h = location.hash.replace(/^#/, '') || '/';
		const qi = h.indexOf('?');
		const path = qi < 0 ? h : h.slice(0, qi);
		const q = new URLSearchParams(qi < 0 ? '' : h.slice(qi + 1));
		const m = path.match(/^\/(device|rollout)\/(.+)$/);
		if (m)
			return {page: m[1], arg: decodeURIComponent(m[2]), q: q};
		return {page: path === '/devices' ? 'devices' : 'overview', q: q};
	}

	const PAGES = {overview: r => overview(),
		devices: r => devices(r.q),
		device: r => device(r.arg),
		rollout: r => rollout(r.arg)};

	async function refresh(mine) {
		const r = parseHash();
		try {
			const draw = await PAGES[r.page](r);
			if (mine !== gen)
				return;
			draw($('view'));
			status('updated ' + new Date().toLocaleTimeString());
		} catch (e) {
			if (mine !== gen)
				return;
			if (e instanceof LoggedOut)
				return showLogin('session ended: log in again');
			status('cannot load: ' + e.message, true);
		}
		timer = setTimeout(() => refresh(mine), POLL_MS);
	}

	function route() {
		clearTimeout(timer);
		const mine = ++gen;
		$('view').replaceChildren();
		refresh(mine);
	}

	async function boot() {
		$('login-form').addEventListener('submit', onLogin);
		$('logout').addEventListener('click', onLogout);
		window.addEventListener('hashchange', () => {
			if (!$('top').hidden)
				route();
		});
		const s = await api('/dash/session');
		if (s.logged_in)
			start(s);
		else
			showLogin();
	}

	document.addEventListener('DOMContentLoaded', boot);
})();
