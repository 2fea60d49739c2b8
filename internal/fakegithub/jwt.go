package fakegithub

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// GenerateKey returns a fresh RSA key and its PKCS#1 PEM, the format GitHub
// hands out for App private keys.
func GenerateKey() (*rsa.PrivateKey, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, fmt.Errorf("generate RSA key: %w", err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return key, p, nil
}

// maxJWTLifetime is GitHub's limit on exp-iat for App JWTs.
const maxJWTLifetime = 10 * time.Minute

// clockSkew is how far in the future iat may be; GitHub recommends
// back-dating iat by 60 s, so it tolerates about that much.
const clockSkew = 60 * time.Second

// verifyAppJWT checks an App JWT the way GitHub does: RS256 signature by
// the App's key, iss = App ID, iat not in the future, exp in the future and
// at most ten minutes after iat. It returns the App.
func (f *Fake) verifyAppJWT(token string, now time.Time) (*App, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("a JSON web token could not be decoded")
	}
	var header struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return nil, fmt.Errorf("a JSON web token could not be decoded: header: %w", err)
	}
	if header.Alg != "RS256" {
		return nil, fmt.Errorf("'alg' must be RS256, got %q", header.Alg)
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Iat json.Number     `json:"iat"`
		Exp json.Number     `json:"exp"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, fmt.Errorf("a JSON web token could not be decoded: claims: %w", err)
	}
	// GitHub accepts iss as a number or a string holding the App ID (or the
	// client ID, which the fake does not model).
	iss := strings.Trim(string(claims.Iss), `"`)
	appID, err := strconv.ParseInt(iss, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("'Issuer' claim ('iss') must be the App ID, got %s", claims.Iss)
	}
	f.mu.Lock()
	app, pub := f.apps[appID], f.keys[appID]
	f.mu.Unlock()
	if app == nil || pub == nil {
		return nil, fmt.Errorf("integration %d not found", appID)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("a JSON web token could not be decoded: signature: %w", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return nil, fmt.Errorf("a JSON web token could not be verified: %w", err)
	}
	iat, err1 := claims.Iat.Int64()
	exp, err2 := claims.Exp.Int64()
	if err1 != nil || err2 != nil {
		return nil, errors.New("'iat' and 'exp' must be integer NumericDates")
	}
	switch {
	case time.Unix(iat, 0).After(now.Add(clockSkew)):
		return nil, errors.New("'Issued at' claim ('iat') must be an Integer representing a time in the past")
	case !time.Unix(exp, 0).After(now):
		return nil, errors.New("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
	case time.Duration(exp-iat)*time.Second > maxJWTLifetime:
		return nil, errors.New("'Expiration time' claim ('exp') is too far in the future")
	}
	return app, nil
}

func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	return d.Decode(v)
}
