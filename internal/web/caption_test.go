package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/omserver/omserver-go/internal/store"
)

// Pages show a caption's formatting, sanitised; the API carries the same
// HTML beside the text; module_info keeps the stored caption as it is.
func TestCaptionHTML(t *testing.T) {
	e := newEnv(t)
	// The original rows: bold title and line break survive.
	e.do(req{method: "GET", path: "/modules", as: "viewer"}).want(t, http.StatusOK,
		`<td class="caption">[<b>功能说明</b>]<br/> 查看所选服务器的操作系统日志信息</td>`)
	e.do(req{method: "GET", path: "/api/v1/modules/1001", as: "viewer"}).want(t, http.StatusOK,
		`"caption_html":"[\u003cb\u003e功能说明\u003c/b\u003e]\u003cbr/\u003e 查看所选服务器的操作系统日志信息"`,
		`"caption_text":"[功能说明]\n 查看所选服务器的操作系统日志信息"`)

	stored := `<i>see</i> <a href="https://wiki.example/x" onclick="steal()">wiki</a> <a href="javascript:alert(1)">js</a><img src=x onerror=alert(2)><span style="color:red">s</span>`
	if _, err := e.st.CreateModule(context.Background(), store.Module{ID: 3100, Name: "linked", Caption: stored}); err != nil {
		t.Fatal(err)
	}
	page := e.do(req{method: "GET", path: "/modules", as: "viewer"}).want(t, http.StatusOK,
		`<i>see</i> <a href="https://wiki.example/x" target="_blank" rel="noopener">wiki</a> js<span>s</span>`).body
	for _, bad := range []string{"onclick", "javascript:", "<img", "onerror", "style="} {
		if strings.Contains(page, bad) {
			t.Errorf("/modules contains %q", bad)
		}
	}
	e.do(req{method: "GET", path: "/autoadmin/module_info/?Module_Id=3100", as: "viewer"}).want(t, http.StatusOK, "3100@@linked@@"+stored+"@@")
}
