//! `neuroflow-node agent run` against an OpenAI-compatible server on loopback: the answer
//! streams to stdout, failures exit non-zero.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Serves `responses` to consecutive requests on a thread (at most 30 s), returning the
/// request bodies it read.
fn server(responses: Vec<String>) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let thread = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut bodies = Vec::new();
        let mut responses = responses.into_iter();
        while Instant::now() < deadline {
            let Ok((conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut reader = BufReader::new(conn);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            bodies.push(String::from_utf8_lossy(&body).into_owned());
            let Some(response) = responses.next() else {
                break;
            };
            let mut conn = reader.into_inner();
            let _ = conn.write_all(response.as_bytes());
            if responses.len() == 0 {
                break;
            }
        }
        bodies
    });
    (port, thread)
}

fn sse(events: &[&str]) -> String {
    let body: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn run(port: u16, prompt: &str) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_neuroflow-node"))
        .args([
            "agent",
            "run",
            "--provider",
            "openai",
            "--model",
            "test-model",
        ])
        .arg("--base-url")
        .arg(format!("http://127.0.0.1:{port}/v1"))
        .arg(prompt)
        .env("NEUROFLOW_API_KEY", "sk-test")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_answer_streams_to_stdout() {
    let (port, server) = server(vec![sse(&[
        r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello "},"finish_reason":null}]}"#,
        r#"{"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"from the mock."},"finish_reason":"stop"}]}"#,
        r#"{"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16}}"#,
        "[DONE]",
    ])]);
    let (code, stdout, stderr) = run(port, "Say hello");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "Hello from the mock.\n");
    assert!(stderr.contains("12 tokens in, 4 out"), "{stderr}");
    let bodies = server.join().unwrap();
    let request: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(request["model"], "test-model");
    assert_eq!(request["stream"], true);
    assert_eq!(request["messages"][0]["content"], "Say hello");
}

#[test]
fn a_failing_provider_exits_non_zero() {
    let error = "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 35\r\nconnection: close\r\n\r\n{\"error\":{\"message\":\"bad request\"}}".to_string();
    let (port, server) = server(vec![error]);
    let (code, stdout, stderr) = run(port, "anything");
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("400"), "{stderr}");
    server.join().unwrap();
}
