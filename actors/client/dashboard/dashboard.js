// The dashboard page: reads the member's feed (GET /dashboard/events, server-sent events) and
// draws the members table and the timeline of role transitions and leader changes. Plain DOM, no
// build step; every value is set as text, never as markup.

/** Timeline entries kept on the page; older ones are dropped. */
const timelineEntriesMax = 200;

const membersBody = document.querySelector('#members tbody');
const timelineList = document.querySelector('#timeline');
const feedState = document.querySelector('#feed-state');
const summary = document.querySelector('#summary');

/** Member names by hex ID, from the latest cluster view. */
const names = new Map();
/** Timeline entries by member, sequence and time, so a member's ring seen again adds nothing. */
const entries = new Map();

function nameOf(id) {
  if (id === '0') return 'none';
  return names.get(id) || id;
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text;
  row.append(td);
}

function bytes(count) {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function perSecond(rates, key) {
  return rates === undefined ? '–' : rates[key].toFixed(1);
}

function drawMembers(cluster) {
  const rows = [];
  let leaders = 0;
  for (const member of cluster.members) {
    const view = member.view;
    const row = document.createElement('tr');
    row.dataset.member = member.id;
    row.dataset.reachable = String(member.reachable);
    if (view !== undefined) row.dataset.role = view.role;
    if (view !== undefined && view.role === 'leader' && member.reachable) {
      row.classList.add('leader');
      leaders += 1;
    }
    if (!member.reachable) row.classList.add('unreachable');
    const rates = cluster.rates[member.id];
    cell(row, member.name || '(unstarted)');
    cell(row, member.id);
    if (view === undefined || !member.reachable) {
      for (let i = 0; i < 11; i += 1) cell(row, '–');
    } else {
      cell(row, view.role + (view.isLearner ? ' (learner)' : ''));
      cell(row, String(view.term));
      cell(row, nameOf(view.leader));
      cell(row, String(view.commit));
      cell(row, String(view.applied));
      cell(row, String(view.revision));
      cell(row, bytes(view.dbSizeBytes));
      cell(row, perSecond(rates, 'put'));
      cell(row, perSecond(rates, 'range'));
      cell(row, perSecond(rates, 'txn'));
      cell(row, perSecond(rates, 'grpc'));
    }
    cell(row, member.reachable ? 'reachable' : `unreachable${member.error ? ` (${member.error})` : ''}`);
    rows.push(row);
  }
  membersBody.replaceChildren(...rows);
  const time = new Date(cluster.atMs).toLocaleTimeString();
  summary.textContent = `${cluster.members.length} members, ${leaders} leader${leaders === 1 ? '' : 's'}; as seen by ${nameOf(cluster.observer)} at ${time}`;
}

function describe(member, transition) {
  const who = nameOf(member);
  const leader = nameOf(transition.leaderAfter);
  if (transition.from === transition.to) {
    // The role stayed, so its entering event is not what changed the leader; it is left out.
    return `${who}: leader changed from ${nameOf(transition.leaderBefore)} to ${leader} in term ${transition.term}`;
  }
  const leaderText = transition.leaderAfter === '0' ? 'no leader' : `leader ${leader}`;
  return `${who}: ${transition.from} → ${transition.to} in term ${transition.term} by ${transition.cause}; ${leaderText}`;
}

function addTransition(member, transition) {
  const key = `${member}/${transition.sequence}/${transition.atMs}`;
  if (entries.has(key)) return false;
  entries.set(key, { member, transition });
  return true;
}

function drawTimeline() {
  const sorted = [...entries.values()].sort(
    (a, b) => b.transition.atMs - a.transition.atMs || b.transition.sequence - a.transition.sequence,
  );
  for (const dropped of sorted.splice(timelineEntriesMax)) {
    entries.delete(`${dropped.member}/${dropped.transition.sequence}/${dropped.transition.atMs}`);
  }
  const items = sorted.map(({ member, transition }) => {
    const item = document.createElement('li');
    item.dataset.member = member;
    item.dataset.term = String(transition.term);
    item.dataset.to = transition.to;
    item.dataset.leaderAfter = transition.leaderAfter;
    item.dataset.kind = transition.from === transition.to ? 'leader-change' : 'role-change';
    const time = document.createElement('time');
    time.dateTime = new Date(transition.atMs).toISOString();
    time.textContent = new Date(transition.atMs).toLocaleTimeString();
    item.append(time, describe(member, transition));
    return item;
  });
  timelineList.replaceChildren(...items);
}

function onCluster(message) {
  const cluster = JSON.parse(message.data);
  for (const member of cluster.members) if (member.name) names.set(member.id, member.name);
  drawMembers(cluster);
  let added = false;
  for (const member of cluster.members) {
    for (const transition of member.view?.transitions ?? []) added = addTransition(member.id, transition) || added;
  }
  if (added) drawTimeline();
}

function onTransition(message) {
  const { member, transition } = JSON.parse(message.data);
  if (addTransition(member, transition)) drawTimeline();
}

function setState(state, text) {
  feedState.dataset.state = state;
  feedState.textContent = text;
}

const feed = new EventSource('/dashboard/events');
feed.addEventListener('open', () => setState('open', 'live'));
feed.addEventListener('error', () => setState('closed', 'feed lost; reconnecting…'));
feed.addEventListener('cluster', onCluster);
feed.addEventListener('transition', onTransition);
feed.addEventListener('failure', (message) => setState('closed', JSON.parse(message.data).message));
