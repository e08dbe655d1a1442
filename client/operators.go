package client

import (
	"context"
	"net/url"

	"flashotp/console"
)

// Operators is GET /admin/operators: the console's accounts.
func (c *Client) Operators(ctx context.Context) ([]console.Operator, []byte, error) {
	var out struct {
		Operators []console.Operator `json:"operators"`
	}
	raw, err := c.do(ctx, "GET", "/admin/operators", nil, &out)
	return out.Operators, raw, err
}

// AddOperator is POST /admin/operators.
func (c *Client) AddOperator(ctx context.Context, name, role, password string) (console.Operator, []byte, error) {
	var out console.Operator
	body := map[string]string{"name": name, "role": role, "password": password}
	raw, err := c.do(ctx, "POST", "/admin/operators", body, &out)
	return out, raw, err
}

// RemoveOperator is DELETE /admin/operators/{name}.
func (c *Client) RemoveOperator(ctx context.Context, name string) ([]byte, error) {
	return c.do(ctx, "DELETE", "/admin/operators/"+url.PathEscape(name), nil, nil)
}
