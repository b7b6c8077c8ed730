package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/omserver/omserver-go/internal/store"
	"github.com/omserver/omserver-go/internal/web"
)

const minPasswordLen = 10

// cmdUser manages web users. Passwords come from a terminal prompt or from
// standard input, never from the command line (argv is visible to every
// user of the machine through ps).
func cmdUser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: omserver user add|passwd|list|disable --config FILE [--role ROLE] NAME"}
	}
	action := args[0]
	fs := newFlagSet("user "+action, stderr)
	cfgPath := fs.String("config", "", "configuration file")
	role := fs.String("role", store.RoleOperator, "role of a new user: admin, operator or viewer")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.Web.Database)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}

	name := fs.Arg(0)
	needName := action != "list"
	if needName && (fs.NArg() != 1 || name == "") {
		return usageError{fmt.Sprintf("user %s: exactly one user NAME is required", action)}
	}
	switch action {
	case "add":
		if !store.ValidRole(*role) {
			return usageError{fmt.Sprintf("--role %q: want admin, operator or viewer", *role)}
		}
		hash, err := readNewPassword(stdin, stderr)
		if err != nil {
			return err
		}
		if _, err := st.CreateUser(ctx, store.User{Name: name, PasswordHash: hash, Role: *role}); err != nil {
			return fmt.Errorf("adding user %q: %w", name, err)
		}
		fmt.Fprintf(stdout, "user %q added with role %s\n", name, *role)
	case "passwd":
		u, err := st.GetUserByName(ctx, name)
		if err != nil {
			return fmt.Errorf("user %q: %w", name, err)
		}
		hash, err := readNewPassword(stdin, stderr)
		if err != nil {
			return err
		}
		if err := st.SetUserPassword(ctx, u.ID, hash); err != nil {
			return err
		}
		if _, err := st.DeleteUserSessions(ctx, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password of %q changed; their sessions were ended\n", name)
	case "disable":
		u, err := st.GetUserByName(ctx, name)
		if err != nil {
			return fmt.Errorf("user %q: %w", name, err)
		}
		if err := st.SetUserDisabled(ctx, u.ID, true); err != nil {
			return err
		}
		if _, err := st.DeleteUserSessions(ctx, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %q disabled\n", name)
	case "list":
		users, err := st.ListUsers(ctx)
		if err != nil {
			return err
		}
		for _, u := range users {
			state := "active"
			if u.Disabled {
				state = "disabled"
			}
			fmt.Fprintf(stdout, "%-20s %-9s %s\n", u.Name, u.Role, state)
		}
	default:
		return usageError{fmt.Sprintf("user: unknown action %q", action)}
	}
	return nil
}

// readNewPassword asks twice on a terminal, or reads one line from a pipe.
func readNewPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	var pw string
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "New password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("reading password: %w", err)
		}
		fmt.Fprint(stderr, "Repeat password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("reading password: %w", err)
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		pw = string(a)
	} else {
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading password from stdin: %w", err)
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if len(pw) < minPasswordLen {
		return "", fmt.Errorf("password must be at least %d characters", minPasswordLen)
	}
	return web.HashPassword(pw)
}
