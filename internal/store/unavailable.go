package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"

	"github.com/omserver/omserver-go/internal/apperr"
)

// ErrUnavailable is wrapped by every error that means the database cannot
// serve the request now (it is down, restarting, unreachable, out of disk
// space or read-only) rather than that the request is wrong: callers retry
// it later (the web tier answers 503 with Retry-After; the runs service
// retries its writes with backoff).
var ErrUnavailable = apperr.New(apperr.Unavailable, "the database is unavailable")

// MySQL server errors that mean "not now" (mysqld_error.h).
var mysqlUnavailable = map[uint16]bool{
	3:    true, // ER_ERROR_ON_WRITE
	1021: true, // ER_DISK_FULL
	1030: true, // ER_GET_ERRNO (e.g. 28, no space left, from the engine)
	1040: true, // ER_CON_COUNT_ERROR: too many connections
	1053: true, // ER_SERVER_SHUTDOWN
	1114: true, // ER_RECORD_FILE_FULL: the table is full
	1203: true, // ER_TOO_MANY_USER_CONNECTIONS
	1205: true, // ER_LOCK_WAIT_TIMEOUT
	1213: true, // ER_LOCK_DEADLOCK: the transaction can be retried
	1290: true, // ER_OPTION_PREVENTS_STATEMENT: --read-only
	1792: true, // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
	1836: true, // ER_READ_ONLY_MODE
	1927: true, // ER_CONNECTION_KILLED
}

// SQLite primary result codes that mean "not now" (sqlite3.h).
var sqliteUnavailable = map[int]bool{
	5:  true, // SQLITE_BUSY
	6:  true, // SQLITE_LOCKED
	7:  true, // SQLITE_NOMEM
	8:  true, // SQLITE_READONLY
	10: true, // SQLITE_IOERR
	13: true, // SQLITE_FULL
	14: true, // SQLITE_CANTOPEN
}

// isUnavailable reports whether err says the database cannot serve now.
func isUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EIO):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return mysqlUnavailable[me.Number]
	}
	var se coder
	if errors.As(err, &se) {
		return sqliteUnavailable[se.Code()&0xff]
	}
	return false
}

// unavailable marks err with ErrUnavailable when it says the database
// cannot serve now; any other error is returned unchanged.
func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !isUnavailable(err) {
		return err
	}
	return &unavailableError{err: err}
}

// unavailableError keeps the driver's error (for the log and errors.As)
// and adds the category.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() []error {
	return []error{ErrUnavailable, e.err}
}

// openMarked opens a database handle whose new connections fail with
// ErrUnavailable when the server cannot be reached, so every query of
// every store method run while the database is down carries the category,
// not only the ones that go through classify.
func openMarked(driverName, dsn string) (*sqlx.DB, error) {
	probe, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	probe.Close()
	var conn driver.Connector = dsnConnector{drv: drv, dsn: dsn}
	if dc, ok := drv.(driver.DriverContext); ok {
		if conn, err = dc.OpenConnector(dsn); err != nil {
			return nil, err
		}
	}
	return sqlx.NewDb(sql.OpenDB(markedConnector{conn}), driverName), nil
}

// dsnConnector is driver.Connector for a driver without OpenConnector.
type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

// markedConnector marks connection failures unavailable.
type markedConnector struct{ driver.Connector }

func (c markedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, &unavailableError{err: fmt.Errorf("connecting to the database: %w", err)}
	}
	return conn, nil
}
