package gateway

// mappers map the sentinel and typed errors of the alarm, rule and history
// packages to HTTP statuses; StatusOf consults them before its own table.
var mappers = []statusMapper{}
